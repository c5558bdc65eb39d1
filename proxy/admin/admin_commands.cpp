#include "proxy/admin/admin_commands.h"

#include <picojson.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "metrics/process_stats.h"
#include "proxy/core/access_log.h"

namespace stickyproxy {

namespace {

constexpr const char* kHelp =
    "commands (append \"json\" to any for a JSON answer):\n"
    "  help                          this text\n"
    "  show workers                  state, pid, uptime, sessions, requests... per worker\n"
    "  show sessions [WORKER]        active and moved sessions per worker\n"
    "  drain WORKER                  no new sessions; its active sessions keep reaching it\n"
    "  drain WORKER wait [SECONDS]   drain, and answer once drained or after SECONDS (default 60)\n"
    "  ready WORKER                  back in rotation for new sessions\n"
    "  evict WORKER                  drain, and move its sessions now (announced to the app)\n"
    "  restart WORKER [SECONDS]      drain (waiting up to SECONDS), stop, respawn, ready\n"
    "  reload                        re-read the configuration file (as SIGHUP)";

// One answer, in both forms.
struct Answer {
  bool ok = true;
  std::string text;      // human form
  picojson::object json;  // JSON form, without "ok"

  static Answer error(const std::string& message) {
    Answer answer;
    answer.ok = false;
    answer.text = "error: " + message;
    answer.json["error"] = picojson::value(message);
    return answer;
  }

  std::string render(bool as_json) const {
    if (!as_json) return text;
    picojson::object out = json;
    out["ok"] = picojson::value(ok);
    return picojson::value(out).serialize();
  }
};

std::string formatUptime(std::chrono::seconds uptime) {
  long long total = uptime.count();
  char buffer[32];
  if (total >= 86400) {
    std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", total / 86400, total % 86400 / 3600);
  } else if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", total / 3600, total % 3600 / 60);
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%llds", total);
  }
  return buffer;
}

// Seconds argument in [0, kMaxWaitSeconds]; nullopt when it is not one.
std::optional<int> parseSeconds(const std::string& word) {
  if (word.empty() || word.size() > 6) return std::nullopt;
  int value = 0;
  for (char c : word) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > AdminCommands::kMaxWaitSeconds) return std::nullopt;
  return value;
}

std::string pad(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

// Keeps the printable ASCII of untrusted text for an error line.
std::string sanitized(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

std::vector<std::string> splitAdminWords(const std::string& line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

void AdminCommands::execute(const std::string& line, AdminServer::Reply reply) {
  std::vector<std::string> words = splitAdminWords(line);
  bool as_json = !words.empty() && words.back() == "json";
  if (as_json) words.pop_back();
  auto send = [reply, as_json](const Answer& answer) { reply(answer.render(as_json)); };
  if (words.empty()) {
    send(Answer::error("empty command; try \"help\""));
    return;
  }
  const std::string& command = words[0];
  logInfo("admin: " + sanitized(line));

  // The worker named by words[1], or an error answer sent.
  auto workerArg = [&](size_t max_words) -> Worker* {
    if (words.size() < 2) {
      send(Answer::error(command + " needs a worker name; try \"help\""));
      return nullptr;
    }
    if (words.size() > max_words) {
      send(Answer::error("unexpected \"" + sanitized(words[max_words]) + "\" after " + command + "; try \"help\""));
      return nullptr;
    }
    Worker* worker = control_.findWorker(words[1]);
    if (worker == nullptr) {
      std::string known;
      for (const auto& [name, w] : control_.workers()) known += (known.empty() ? "" : ", ") + name;
      send(Answer::error("unknown worker \"" + sanitized(words[1]) + "\" (workers: " + known + ")"));
    }
    return worker;
  };

  if (command == "help" && words.size() == 1) {
    Answer answer;
    answer.text = kHelp;
    answer.json["help"] = picojson::value(std::string(kHelp));
    send(answer);
  } else if (command == "show" && words.size() == 2 && words[1] == "workers") {
    Answer answer;
    auto sessions = control_.sessions().activeSessionsPerWorker();
    answer.text = pad("NAME", 10) + pad("STATE", 10) + pad("PID", 9) + pad("UPTIME", 9) + pad("SESSIONS", 10) +
                  pad("INFLIGHT", 10) + pad("QUEUED", 8) + pad("REQUESTS", 10) + pad("ERRORS", 8) + pad("RESTARTS", 10) + pad("CPU", 10) + "MEMORY";
    picojson::array list;
    auto steady_now = std::chrono::steady_clock::now();
    for (const auto& [name, worker] : control_.workers()) {
      const WorkerProcess* process = control_.process(name);
      std::chrono::seconds uptime{0};
      bool has_uptime = worker->up();
      if (has_uptime) {
        auto since = process != nullptr && process->running() ? process->startedAt() : worker->stateSince();
        uptime = std::chrono::duration_cast<std::chrono::seconds>(steady_now - since);
      }
      size_t live = sessions.count(name) ? sessions[name] : 0;
      Worker& w = *worker;
      // The same /proc figures the metrics export: CPU seconds used and resident memory.
      ProcessStats usage;
      bool has_usage = false;
      if (w.pid() != 0) {
        if (std::optional<ProcessStats> read = readProcessStats(w.pid())) {
          usage = *read;
          has_usage = true;
        }
      }
      char cpu_text[32] = "-";
      char memory_text[32] = "-";
      if (has_usage) {
        std::snprintf(cpu_text, sizeof cpu_text, "%.1fs", usage.cpu_seconds);
        std::snprintf(memory_text, sizeof memory_text, "%.1fMiB", static_cast<double>(usage.resident_bytes) / (1 << 20));
      }
      std::string state = workerStateName(w.state());
      answer.text += "\n" + pad(name, 10) + pad(state, 10) + pad(w.pid() != 0 ? std::to_string(w.pid()) : "-", 9) +
                     pad(has_uptime ? formatUptime(uptime) : "-", 9) + pad(std::to_string(live), 10) +
                     pad(std::to_string(w.admission().inFlight()), 10) +
                     pad(std::to_string(w.admission().queued()), 8) + pad(std::to_string(w.counters().requests), 10) +
                     pad(std::to_string(w.counters().errors), 8) + pad(std::to_string(w.counters().restarts), 10) +
                     pad(cpu_text, 10) + memory_text;
      picojson::object item;
      item["name"] = picojson::value(name);
      item["state"] = picojson::value(state);
      item["admin_draining"] = picojson::value(control_.adminDraining(name));
      item["pid"] = picojson::value(static_cast<double>(w.pid()));
      item["uptime_seconds"] = has_uptime ? picojson::value(static_cast<double>(uptime.count())) : picojson::value();
      item["sessions"] = picojson::value(static_cast<double>(live));
      item["in_flight"] = picojson::value(static_cast<double>(w.admission().inFlight()));
      item["queued"] = picojson::value(static_cast<double>(w.admission().queued()));
      item["requests"] = picojson::value(static_cast<double>(w.counters().requests));
      item["errors"] = picojson::value(static_cast<double>(w.counters().errors));
      item["restarts"] = picojson::value(static_cast<double>(w.counters().restarts));
      item["cpu_seconds"] = has_usage ? picojson::value(usage.cpu_seconds) : picojson::value();
      item["resident_memory_bytes"] =
          has_usage ? picojson::value(static_cast<double>(usage.resident_bytes)) : picojson::value();
      list.emplace_back(item);
    }
    answer.json["workers"] = picojson::value(list);
    send(answer);
  } else if (command == "show" && words.size() >= 2 && words[1] == "sessions" && words.size() <= 3) {
    std::string only;
    if (words.size() == 3) {
      if (control_.findWorker(words[2]) == nullptr) {
        send(Answer::error("unknown worker \"" + sanitized(words[2]) + "\""));
        return;
      }
      only = words[2];
    }
    auto active = control_.sessions().activeSessionsPerWorker();
    auto moved = control_.sessions().movedPerWorker();
    Answer answer;
    answer.text = pad("NAME", 10) + pad("ACTIVE", 10) + "MOVED_HERE";
    picojson::array list;
    size_t total_active = 0;
    for (const auto& [name, worker] : control_.workers()) {
      if (!only.empty() && name != only) continue;
      size_t a = active.count(name) ? active[name] : 0;
      size_t m = moved.count(name) ? moved[name] : 0;
      total_active += a;
      answer.text += "\n" + pad(name, 10) + pad(std::to_string(a), 10) + std::to_string(m);
      picojson::object item;
      item["name"] = picojson::value(name);
      item["active"] = picojson::value(static_cast<double>(a));
      item["moved"] = picojson::value(static_cast<double>(m));
      list.emplace_back(item);
    }
    if (only.empty()) {
      answer.text += "\ntotal: " + std::to_string(total_active) + " active, " +
                     std::to_string(control_.sessions().movedCount()) + " moved off their ring owner";
      answer.json["moved_total"] = picojson::value(static_cast<double>(control_.sessions().movedCount()));
    }
    answer.json["workers"] = picojson::value(list);
    send(answer);
  } else if (command == "drain") {
    Worker* worker = workerArg(4);
    if (worker == nullptr) return;
    bool wait = words.size() >= 3;
    if (wait && words[2] != "wait") {
      send(Answer::error("expected \"wait\" after the worker name, not \"" + sanitized(words[2]) + "\""));
      return;
    }
    int seconds = kDefaultWaitSeconds;
    if (words.size() == 4) {
      auto parsed = parseSeconds(words[3]);
      if (!parsed) {
        send(Answer::error("\"" + sanitized(words[3]) + "\" is not a number of seconds (0 to " +
                           std::to_string(kMaxWaitSeconds) + ")"));
        return;
      }
      seconds = *parsed;
    }
    std::string name = worker->name();
    control_.drainWorker(*worker);
    if (!wait) {
      Answer answer;
      answer.text = name + " is " + workerStateName(worker->state()) +
                    (worker->up() ? "" : " (it drains once it is up)") + ": no new sessions";
      answer.json["worker"] = picojson::value(name);
      answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
      send(answer);
      return;
    }
    WorkerControl* control = &control_;
    control_.waitDrained(name, std::chrono::seconds(seconds), [send, name, seconds, control](const std::string& outcome) {
      Worker* w = control->findWorker(name);
      std::string state = w != nullptr ? workerStateName(w->state()) : "gone";
      Answer answer;
      if (outcome == "drained") {
        answer.text = name + " drained";
      } else if (outcome == "timeout") {
        answer = Answer::error("");
        answer.text = "timeout: " + name + " not drained after " + std::to_string(seconds) + "s (" + state +
                      "; in flight " + std::to_string(w != nullptr ? w->admission().inFlight() : 0) + ")";
        answer.json["error"] = picojson::value(std::string("timeout"));
      } else {
        answer = Answer::error("drain of " + name + " interrupted: " + outcome);
      }
      answer.json["worker"] = picojson::value(name);
      answer.json["state"] = picojson::value(state);
      answer.json["result"] = picojson::value(outcome);
      send(answer);
    });
  } else if (command == "ready") {
    Worker* worker = workerArg(2);
    if (worker == nullptr) return;
    control_.readyWorker(*worker);
    Answer answer;
    answer.text = worker->name() + " is " + workerStateName(worker->state()) +
                  (worker->up() ? ": in rotation" : " (back in rotation once it is up)");
    answer.json["worker"] = picojson::value(worker->name());
    answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
    send(answer);
  } else if (command == "evict") {
    Worker* worker = workerArg(2);
    if (worker == nullptr) return;
    size_t moved = control_.evictWorker(*worker);
    Answer answer;
    answer.text = worker->name() + " evicted: " + std::to_string(moved) +
                  " sessions moved (announced with X-Sticky-Previous-Worker); it is " +
                  workerStateName(worker->state()) + " until \"ready " + worker->name() + "\"";
    answer.json["worker"] = picojson::value(worker->name());
    answer.json["moved"] = picojson::value(static_cast<double>(moved));
    answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
    send(answer);
  } else if (command == "restart") {
    Worker* worker = workerArg(3);
    if (worker == nullptr) return;
    int seconds = kDefaultWaitSeconds;
    if (words.size() == 3) {
      auto parsed = parseSeconds(words[2]);
      if (!parsed) {
        send(Answer::error("\"" + sanitized(words[2]) + "\" is not a number of seconds (0 to " +
                           std::to_string(kMaxWaitSeconds) + ")"));
        return;
      }
      seconds = *parsed;
    }
    if (!worker->supervised()) {
      send(Answer::error(worker->name() + " is an external worker (no command): the proxy cannot restart it"));
      return;
    }
    std::string name = worker->name();
    control_.restartWorker(name, std::chrono::seconds(seconds), [send, name](bool ok, const std::string& message) {
      Answer answer = ok ? Answer() : Answer::error(message);
      if (ok) answer.text = message;
      answer.json["worker"] = picojson::value(name);
      answer.json["message"] = picojson::value(message);
      send(answer);
    });
  } else if (command == "reload" && words.size() == 1) {
    if (control_.reload()) {
      Answer answer;
      answer.text = "configuration reloaded from " + control_.configPath();
      send(answer);
    } else {
      send(Answer::error("reload rejected, the running configuration is kept (the proxy's log has the problems)"));
    }
  } else {
    send(Answer::error("unknown command \"" + sanitized(line) + "\"; try \"help\""));
  }
}

}  // namespace stickyproxy
