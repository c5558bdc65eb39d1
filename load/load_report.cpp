#include "load/load_report.h"

#include <picojson.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace stickyproxy::load {

namespace {

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string general(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

std::string seconds(double value) {
  return value < 1 ? fixed(value * 1000, 0) + " ms" : fixed(value, 2) + " s";
}

std::string mib(uint64_t bytes) { return fixed(static_cast<double>(bytes) / (1024.0 * 1024.0), 1) + " MiB"; }

picojson::value number(double value) { return picojson::value(std::isfinite(value) ? value : 0.0); }

}  // namespace

LoadReport::LoadReport(const LoadOptions& options, const LoadRun& run, const ProcessSampler& sampler, size_t wards)
    : options_(options), run_(run), sampler_(sampler), wards_(wards) {}

const Level* LoadReport::judgedLevel() const {
  const auto& levels = run_.levels();
  if (levels.empty()) return nullptr;
  if (!options_.find_capacity) return &levels.front();
  const Level* held = nullptr;
  for (const Level& level : levels) {
    if (level.held) held = &level;
  }
  return held;
}

uint32_t LoadReport::capacity() const {
  const Level* level = judgedLevel();
  return level != nullptr && level->held ? level->users : 0;
}

std::vector<LoadReport::Verdict> LoadReport::verdicts() const {
  const LoadRecorder& recorder = run_.recorder();
  std::vector<Verdict> out;
  const Level* level = judgedLevel();
  if (options_.find_capacity) {
    out.push_back({"capacity: users held at p99 < " + general(options_.goal_p99) + " s" + " without an error",
                   std::to_string(capacity()) + " users", capacity() > 0});
    if (level == nullptr) return out;
  }
  uint64_t session = recorder.errors(FailureKind::kSession);
  uint64_t failed_uploads = recorder.failed_uploads_whole + recorder.failed_uploads_chunked;
  uint64_t uploads = recorder.uploads_whole + recorder.uploads_chunked;
  if (!options_.find_capacity) {
    out.push_back({"no session errors", std::to_string(session), session == 0});
    out.push_back({"no upload failures", std::to_string(failed_uploads) + " of " + std::to_string(uploads),
                   failed_uploads == 0});
    uint64_t others = recorder.errors(FailureKind::kHttp) + recorder.errors(FailureKind::kNetwork);
    out.push_back({"every other request succeeded", std::to_string(others) + " failed" +
                   (run_.stuck() > 0 ? ", " + std::to_string(run_.stuck()) + " users stuck" : ""),
                   others == 0 && run_.stuck() == 0});
  }
  // A plain run is judged as a whole; a capacity run at its last step that held.
  if (!options_.find_capacity) level = nullptr;
  double p99 = level != nullptr ? level->p99 : recorder.all().quantile(0.99);
  out.push_back({"p99 < " + general(options_.goal_p99) + " s" + (options_.find_capacity ? " (at capacity)" : ""),
                 seconds(p99), p99 < options_.goal_p99});
  double cpu = level != nullptr ? level->host_cpu : sampler_.hostAverage();
  double own = 100.0 * sampler_.ownCpuSeconds() / (std::max(run_.measured(), 1.0) * sampler_.cores());
  out.push_back({"host CPU < " + general(options_.goal_cpu) + "%" + (options_.find_capacity ? " (at capacity)" : ""),
                 fixed(cpu, 1) + "% (this generator: " + fixed(own, 1) + "% over the run)", cpu < options_.goal_cpu});
  return out;
}

bool LoadReport::print(FILE* out) const {
  const LoadRecorder& recorder = run_.recorder();
  std::fprintf(out, "\nlatency per step (from sending the request to the whole answer)\n");
  std::fprintf(out, "  %-44s %8s %9s %9s %9s %9s %7s\n", "step", "count", "p50", "p95", "p99", "max", "errors");
  for (const std::string& name : recorder.stepOrder()) {
    const StepStats& step = recorder.step(name);
    const LatencyHistogram& latency = step.latency;
    std::fprintf(out, "  %-44s %8llu %9s %9s %9s %9s %7llu\n", (name + (step.judged ? "" : " *")).c_str(),
                 static_cast<unsigned long long>(latency.count()), seconds(latency.quantile(0.5)).c_str(),
                 seconds(latency.quantile(0.95)).c_str(), seconds(latency.quantile(0.99)).c_str(),
                 seconds(latency.max()).c_str(), static_cast<unsigned long long>(step.errors));
  }
  const LatencyHistogram& all = recorder.all();
  std::fprintf(out, "  %-44s %8llu %9s %9s %9s %9s %7llu\n", "all judged requests",
               static_cast<unsigned long long>(all.count()), seconds(all.quantile(0.5)).c_str(),
               seconds(all.quantile(0.95)).c_str(), seconds(all.quantile(0.99)).c_str(), seconds(all.max()).c_str(),
               static_cast<unsigned long long>(recorder.errorsTotal()));
  std::fprintf(out, "  * the chat's first event is judged; its whole stream is paced by the app\n");

  std::map<std::string, std::pair<uint32_t, uint64_t>> per_worker;  // users, flows
  uint64_t connections = 0;
  for (const auto& user : run_.users()) {
    auto& entry = per_worker[user->worker().empty() ? "?" : user->worker()];
    ++entry.first;
    entry.second += user->flowsDone();
    connections += user->connectionsOpened();
  }
  std::fprintf(out, "\ntotals over %.0f s\n", run_.measured());
  std::fprintf(out, "  requests %llu (%.1f/s), connections opened %llu, flows completed %llu, cut short at the end %llu\n",
               static_cast<unsigned long long>(recorder.requests()),
               static_cast<double>(recorder.requests()) / std::max(run_.measured(), 1.0),
               static_cast<unsigned long long>(connections), static_cast<unsigned long long>(recorder.flows_completed),
               static_cast<unsigned long long>(recorder.flows_cut));
  std::fprintf(out, "  uploads whole %llu (failed %llu), chunked %llu (failed %llu)\n",
               static_cast<unsigned long long>(recorder.uploads_whole),
               static_cast<unsigned long long>(recorder.failed_uploads_whole),
               static_cast<unsigned long long>(recorder.uploads_chunked),
               static_cast<unsigned long long>(recorder.failed_uploads_chunked));
  std::fprintf(out, "  errors:");
  for (FailureKind kind : {FailureKind::kSession, FailureKind::kUpload, FailureKind::kHttp, FailureKind::kNetwork}) {
    std::fprintf(out, " %s %llu;", failureKindName(kind), static_cast<unsigned long long>(recorder.errors(kind)));
  }
  std::fprintf(out, " session-error texts:");
  if (recorder.sessionTexts().empty()) std::fprintf(out, " none");
  for (const auto& [text, count] : recorder.sessionTexts()) std::fprintf(out, " \"%s\" x %llu", text.c_str(), static_cast<unsigned long long>(count));
  std::fprintf(out, "\n  re-pins (answers from another worker than the user's earlier ones) %llu, requests resent after an idle close %llu, chats asked again %llu\n",
               static_cast<unsigned long long>(recorder.worker_changes), static_cast<unsigned long long>(recorder.resent),
               static_cast<unsigned long long>(recorder.reasked));
  std::fprintf(out, "  users per worker:");
  for (const auto& [worker, entry] : per_worker) {
    std::fprintf(out, " %s %u (%llu flows);", worker.c_str(), entry.first, static_cast<unsigned long long>(entry.second));
  }
  std::fprintf(out, "\n");
  if (!recorder.samples().empty()) {
    std::fprintf(out, "  first failures:\n");
    for (const std::string& sample : recorder.samples()) std::fprintf(out, "    %s\n", sample.c_str());
  }

  double window = std::max(run_.measured(), 1.0);
  std::fprintf(out, "\nprocesses over the run (%d CPUs; CPU seconds, share of the host, peak resident)\n", sampler_.cores());
  for (const ProcessFigures& process : sampler_.figures()) {
    std::fprintf(out, "  %-18s %8.1f s %6.1f%% %12s%s\n", process.name.c_str(), process.cpu_seconds,
                 100.0 * process.cpu_seconds / (window * sampler_.cores()), mib(process.peak_resident).c_str(),
                 process.pids > 1 ? (" (" + std::to_string(process.pids) + " processes: it restarted)").c_str() : "");
  }
  std::fprintf(out, "  %-18s %8.1f s %6.1f%% %12s\n", "this generator", sampler_.ownCpuSeconds(),
               100.0 * sampler_.ownCpuSeconds() / (window * sampler_.cores()), mib(sampler_.ownPeakResident()).c_str());
  std::fprintf(out, "  host busy on average %.1f%% (niced processes not counted)\n", sampler_.hostAverage());

  if (options_.find_capacity) {
    std::fprintf(out, "\ncapacity steps (each judged after its new users had started)\n");
    std::fprintf(out, "  %6s %9s %9s %9s %9s %7s  %s\n", "users", "requests", "p50", "p99", "host CPU", "errors", "held");
    for (const Level& level : run_.levels()) {
      std::fprintf(out, "  %6u %9llu %9s %9s %8.1f%% %7llu  %s\n", level.users,
                   static_cast<unsigned long long>(level.requests), seconds(level.p50).c_str(),
                   seconds(level.p99).c_str(), level.host_cpu, static_cast<unsigned long long>(level.errors),
                   level.held ? "yes" : ("no: " + level.why).c_str());
    }
  }

  std::fprintf(out, "\nthe users' criteria (%u users%s, %zu wards)\n", options_.find_capacity ? capacity() : options_.users,
               options_.find_capacity ? " at capacity" : "", wards_);
  bool passed = true;
  for (const Verdict& verdict : verdicts()) {
    std::fprintf(out, "  %s  %-52s %s\n", verdict.passed ? "PASS" : "FAIL", verdict.goal.c_str(), verdict.figure.c_str());
    passed = passed && verdict.passed;
  }
  return passed;
}

std::string LoadReport::json() const {
  const LoadRecorder& recorder = run_.recorder();
  picojson::object document;
  picojson::object run;
  run["target"] = picojson::value(options_.target_text);
  run["users"] = number(options_.users);
  run["duration_s"] = number(options_.duration);
  run["ramp_s"] = number(options_.ramp);
  run["think_s"] = picojson::value(picojson::array{number(options_.think_min), number(options_.think_max)});
  run["wards"] = number(static_cast<double>(wards_));
  run["measured_s"] = number(run_.measured());
  run["find_capacity"] = picojson::value(options_.find_capacity);
  document["run"] = picojson::value(run);

  picojson::object steps;
  for (const std::string& name : recorder.stepOrder()) {
    const StepStats& step = recorder.step(name);
    picojson::object item;
    item["count"] = number(static_cast<double>(step.latency.count()));
    item["p50_s"] = number(step.latency.quantile(0.5));
    item["p95_s"] = number(step.latency.quantile(0.95));
    item["p99_s"] = number(step.latency.quantile(0.99));
    item["max_s"] = number(step.latency.max());
    item["errors"] = number(static_cast<double>(step.errors));
    item["judged"] = picojson::value(step.judged);
    steps[name] = picojson::value(item);
  }
  document["steps"] = picojson::value(steps);

  picojson::object totals;
  totals["requests"] = number(static_cast<double>(recorder.requests()));
  totals["flows_completed"] = number(static_cast<double>(recorder.flows_completed));
  totals["uploads_whole"] = number(static_cast<double>(recorder.uploads_whole));
  totals["uploads_chunked"] = number(static_cast<double>(recorder.uploads_chunked));
  totals["failed_uploads"] = number(static_cast<double>(recorder.failed_uploads_whole + recorder.failed_uploads_chunked));
  for (FailureKind kind : {FailureKind::kSession, FailureKind::kUpload, FailureKind::kHttp, FailureKind::kNetwork}) {
    std::string key = failureKindName(kind);
    std::replace(key.begin(), key.end(), ' ', '_');
    totals[key + "s"] = number(static_cast<double>(recorder.errors(kind)));
  }
  totals["re_pins"] = number(static_cast<double>(recorder.worker_changes));
  totals["resent_after_idle_close"] = number(static_cast<double>(recorder.resent));
  totals["p99_s"] = number(recorder.all().quantile(0.99));
  document["totals"] = picojson::value(totals);

  picojson::array processes;
  for (const ProcessFigures& process : sampler_.figures()) {
    picojson::object item;
    item["name"] = picojson::value(process.name);
    item["cpu_s"] = number(process.cpu_seconds);
    item["peak_resident_bytes"] = number(static_cast<double>(process.peak_resident));
    processes.emplace_back(item);
  }
  picojson::object self;
  self["name"] = picojson::value("stickyproxy-load");
  self["cpu_s"] = number(sampler_.ownCpuSeconds());
  self["peak_resident_bytes"] = number(static_cast<double>(sampler_.ownPeakResident()));
  processes.emplace_back(self);
  document["processes"] = picojson::value(processes);

  picojson::array timeline;
  const auto& seconds_list = recorder.timeline();
  const auto& host = sampler_.hostSamples();
  for (size_t i = 0; i < seconds_list.size(); ++i) {
    picojson::object item;
    item["t"] = number(static_cast<double>(i));
    item["users"] = number(seconds_list[i].users);
    item["requests"] = number(static_cast<double>(seconds_list[i].requests));
    item["errors"] = number(static_cast<double>(seconds_list[i].errors));
    item["p50_s"] = number(seconds_list[i].latency.quantile(0.5));
    item["p99_s"] = number(seconds_list[i].latency.quantile(0.99));
    item["host_cpu"] = i < host.size() ? number(host[i]) : picojson::value();
    timeline.emplace_back(item);
  }
  document["timeline"] = picojson::value(timeline);

  picojson::array levels;
  for (const Level& level : run_.levels()) {
    picojson::object item;
    item["users"] = number(level.users);
    item["from_s"] = number(static_cast<double>(level.from));
    item["to_s"] = number(static_cast<double>(level.to));
    item["requests"] = number(static_cast<double>(level.requests));
    item["errors"] = number(static_cast<double>(level.errors));
    item["p50_s"] = number(level.p50);
    item["p99_s"] = number(level.p99);
    item["host_cpu"] = number(level.host_cpu);
    item["held"] = picojson::value(level.held);
    levels.emplace_back(item);
  }
  document["levels"] = picojson::value(levels);
  if (options_.find_capacity) document["capacity_users"] = number(capacity());

  picojson::array criteria;
  for (const Verdict& verdict : verdicts()) {
    picojson::object item;
    item["goal"] = picojson::value(verdict.goal);
    item["figure"] = picojson::value(verdict.figure);
    item["passed"] = picojson::value(verdict.passed);
    criteria.emplace_back(item);
  }
  document["criteria"] = picojson::value(criteria);
  return picojson::value(document).serialize(true);
}

std::string LoadReport::svg() const {
  const auto& timeline = run_.recorder().timeline();
  const double width = 960, panel = 220, left = 70, right = 70, top = 40, gap = 60;
  const double plot = width - left - right;
  size_t n = std::max<size_t>(timeline.size(), 2);
  double max_rate = 1, max_latency = options_.goal_p99 * 1.2;
  uint32_t max_users = 1;
  for (const Second& second : timeline) {
    max_rate = std::max(max_rate, static_cast<double>(second.requests));
    max_latency = std::max(max_latency, second.latency.quantile(0.99));
    max_users = std::max(max_users, second.users);
  }
  auto x = [&](size_t i) { return left + plot * static_cast<double>(i) / static_cast<double>(n - 1); };
  auto line = [&](double base, double max, const std::string& color, auto value) {
    std::string points;
    for (size_t i = 0; i < timeline.size(); ++i) {
      points += fixed(x(i), 1) + "," + fixed(base + panel - panel * std::min(1.0, value(timeline[i]) / max), 1) + " ";
    }
    return "<polyline fill='none' stroke='" + color + "' stroke-width='1.5' points='" + points + "'/>\n";
  };
  auto axes = [&](double base, const std::string& title, const std::string& top_label, const std::string& right_label) {
    std::string out = "<rect x='" + fixed(left, 0) + "' y='" + fixed(base, 0) + "' width='" +
                      fixed(plot, 0) + "' height='" + fixed(panel, 0) + "' fill='none' stroke='#999'/>\n";
    out += "<text x='" + fixed(left, 0) + "' y='" + fixed(base - 8, 0) + "'>" + title + "</text>\n";
    out += "<text x='" + fixed(left - 6, 0) + "' y='" + fixed(base + 12, 0) + "' text-anchor='end'>" +
           top_label + "</text>\n";
    out += "<text x='" + fixed(left - 6, 0) + "' y='" + fixed(base + panel, 0) + "' text-anchor='end'>0</text>\n";
    if (!right_label.empty()) {
      out += "<text x='" + fixed(left + plot + 6, 0) + "' y='" + fixed(base + 12, 0) + "'>" + right_label +
             "</text>\n";
    }
    return out;
  };
  double second_base = top + panel + gap;
  double height = second_base + panel + 40;
  std::string out = "<svg xmlns='http://www.w3.org/2000/svg' width='" + fixed(width, 0) + "' height='" +
                    fixed(height, 0) + "' font-family='sans-serif' font-size='12'>\n";
  out += "<rect width='100%' height='100%' fill='white'/>\n";
  out += axes(top, "requests per second (blue) and users (grey, right scale)", fixed(max_rate, 0),
              std::to_string(max_users) + " users");
  out += line(top, max_rate, "#1f77b4", [](const Second& s) { return static_cast<double>(s.requests); });
  out += line(top, max_users, "#888", [](const Second& s) { return static_cast<double>(s.users); });
  out += axes(second_base, "latency per second: p50 (green), p99 (red); dashed: the goal", seconds(max_latency), "");
  double goal_y = second_base + panel - panel * options_.goal_p99 / max_latency;
  out += "<line x1='" + fixed(left, 0) + "' x2='" + fixed(left + plot, 0) + "' y1='" + fixed(goal_y, 1) +
         "' y2='" + fixed(goal_y, 1) + "' stroke='#d62728' stroke-dasharray='4 4'/>\n";
  out += line(second_base, max_latency, "#2ca02c", [](const Second& s) { return s.latency.quantile(0.5); });
  out += line(second_base, max_latency, "#d62728", [](const Second& s) { return s.latency.quantile(0.99); });
  out += "<text x='" + fixed(left + plot / 2, 0) + "' y='" + fixed(height - 10, 0) +
         "' text-anchor='middle'>seconds since the first user started (0 to " + std::to_string(timeline.size()) +
         ")</text>\n";
  out += "</svg>\n";
  return out;
}

}  // namespace stickyproxy::load
