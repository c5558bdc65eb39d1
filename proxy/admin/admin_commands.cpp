#include "proxy/admin/admin_commands.h"

#include <picojson.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <string_view>

#include "metrics/process_stats.h"
#include "proxy/core/access_log.h"

namespace stickyproxy {

namespace {

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

namespace {

using Args = std::vector<std::string>;
using Send = std::function<void(const Answer& answer)>;

std::string helpText();

// --- the commands; `worker` is args[0]'s for those that take a worker, else null ---

void help(WorkerControl&, const Args&, Worker*, const Send& send) {
  Answer answer;
  answer.text = helpText();
  answer.json["help"] = picojson::value(answer.text);
  send(answer);
}

void showWorkers(WorkerControl& control, const Args&, Worker*, const Send& send) {
  Answer answer;
  auto sessions = control.sessions().activeSessionsPerWorker();
  answer.text = pad("NAME", 10) + pad("STATE", 10) + pad("PID", 9) + pad("UPTIME", 9) + pad("SESSIONS", 10) +
                pad("INFLIGHT", 10) + pad("QUEUED", 8) + pad("REQUESTS", 10) + pad("ERRORS", 8) + pad("RESTARTS", 10) + pad("CPU", 10) + "MEMORY";
  picojson::array list;
  auto steady_now = std::chrono::steady_clock::now();
  for (const auto& [name, worker] : control.workers()) {
    const WorkerProcess* process = control.process(name);
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
    item["admin_draining"] = picojson::value(control.adminDraining(name));
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
}

void showSessions(WorkerControl& control, const Args& args, Worker*, const Send& send) {
  std::string only;
  if (args.size() == 1) {
    if (control.findWorker(args[0]) == nullptr) {
      send(Answer::error("unknown worker \"" + sanitized(args[0]) + "\""));
      return;
    }
    only = args[0];
  }
  auto active = control.sessions().activeSessionsPerWorker();
  auto moved = control.sessions().movedPerWorker();
  Answer answer;
  answer.text = pad("NAME", 10) + pad("ACTIVE", 10) + "MOVED_HERE";
  picojson::array list;
  size_t total_active = 0;
  for (const auto& [name, worker] : control.workers()) {
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
                   std::to_string(control.sessions().movedCount()) + " moved off their ring owner";
    answer.json["moved_total"] = picojson::value(static_cast<double>(control.sessions().movedCount()));
  }
  answer.json["workers"] = picojson::value(list);
  send(answer);
}

// The wait in args[index] (kDefaultWaitSeconds when there is none), or nullopt with an error
// answer sent.
std::optional<int> waitSeconds(const Args& args, size_t index, const Send& send) {
  if (args.size() <= index) return AdminCommands::kDefaultWaitSeconds;
  std::optional<int> parsed = parseSeconds(args[index]);
  if (!parsed) {
    send(Answer::error("\"" + sanitized(args[index]) + "\" is not a number of seconds (0 to " +
                       std::to_string(AdminCommands::kMaxWaitSeconds) + ")"));
  }
  return parsed;
}

void drain(WorkerControl& control, const Args& args, Worker* worker, const Send& send) {
  bool wait = args.size() >= 2;
  if (wait && args[1] != "wait") {
    send(Answer::error("expected \"wait\" after the worker name, not \"" + sanitized(args[1]) + "\""));
    return;
  }
  std::optional<int> wait_seconds = waitSeconds(args, 2, send);
  if (!wait_seconds) return;
  int seconds = *wait_seconds;
  std::string name = worker->name();
  control.drainWorker(*worker);
  if (!wait) {
    Answer answer;
    answer.text = name + " is " + workerStateName(worker->state()) +
                  (worker->up() ? "" : " (it drains once it is up)") + ": no new sessions";
    answer.json["worker"] = picojson::value(name);
    answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
    send(answer);
    return;
  }
  control.waitDrained(name, std::chrono::seconds(seconds), [send, name, seconds, &control](const std::string& outcome) {
    Worker* w = control.findWorker(name);
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
}

void ready(WorkerControl& control, const Args&, Worker* worker, const Send& send) {
  control.readyWorker(*worker);
  Answer answer;
  answer.text = worker->name() + " is " + workerStateName(worker->state()) +
                (worker->up() ? ": in rotation" : " (back in rotation once it is up)");
  answer.json["worker"] = picojson::value(worker->name());
  answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
  send(answer);
}

void evict(WorkerControl& control, const Args&, Worker* worker, const Send& send) {
  size_t moved = control.evictWorker(*worker);
  Answer answer;
  answer.text = worker->name() + " evicted: " + std::to_string(moved) +
                " sessions moved (announced with X-Sticky-Previous-Worker); it is " +
                workerStateName(worker->state()) + " until \"ready " + worker->name() + "\"";
  answer.json["worker"] = picojson::value(worker->name());
  answer.json["moved"] = picojson::value(static_cast<double>(moved));
  answer.json["state"] = picojson::value(std::string(workerStateName(worker->state())));
  send(answer);
}

void restart(WorkerControl& control, const Args& args, Worker* worker, const Send& send) {
  std::optional<int> wait_seconds = waitSeconds(args, 1, send);
  if (!wait_seconds) return;
  int seconds = *wait_seconds;
  if (!worker->supervised()) {
    send(Answer::error(worker->name() + " is an external worker (no command): the proxy cannot restart it"));
    return;
  }
  std::string name = worker->name();
  control.restartWorker(name, std::chrono::seconds(seconds), [send, name](bool ok, const std::string& message) {
    Answer answer = ok ? Answer() : Answer::error(message);
    if (ok) answer.text = message;
    answer.json["worker"] = picojson::value(name);
    answer.json["message"] = picojson::value(message);
    send(answer);
  });
}

void reload(WorkerControl& control, const Args&, Worker*, const Send& send) {
  if (control.reload()) {
    Answer answer;
    answer.text = "configuration reloaded from " + control.configPath();
    send(answer);
  } else {
    send(Answer::error("reload rejected, the running configuration is kept (the proxy's log has the problems)"));
  }
}

void upgrade(WorkerControl& control, const Args&, Worker*, const Send& send) {
  control.upgrade([send](bool ok, const std::string& message) {
    if (!ok) {
      send(Answer::error(message));
      return;
    }
    Answer answer;
    answer.text = message;
    answer.json["message"] = picojson::value(message);
    send(answer);
  });
}

struct HelpLine {
  const char* usage;
  const char* text;
};

// One command: its words, how many arguments may follow them, what runs it, and its help.
struct Command {
  std::vector<std::string_view> words;
  // A command that takes a worker matches on its words alone; a wrong argument count or an
  // unknown worker gets its own error. Any other command matches only with an argument count
  // in [0, max_args].
  bool takes_worker;
  size_t max_args;
  void (*run)(WorkerControl& control, const Args& args, Worker* worker, const Send& send);
  std::vector<HelpLine> help;
};

const std::vector<Command>& commandTable() {
  static const std::vector<Command> table = {
      {{"help"}, false, 0, help, {{"help", "this text"}}},
      {{"show", "workers"}, false, 0, showWorkers,
       {{"show workers", "state, pid, uptime, sessions, requests... per worker"}}},
      {{"show", "sessions"}, false, 1, showSessions,
       {{"show sessions [WORKER]", "active and moved sessions per worker"}}},
      {{"drain"}, true, 3, drain,
       {{"drain WORKER", "no new sessions; its active sessions keep reaching it"},
        {"drain WORKER wait [SECONDS]", "drain, and answer once drained or after SECONDS (default 60)"}}},
      {{"ready"}, true, 1, ready, {{"ready WORKER", "back in rotation for new sessions"}}},
      {{"evict"}, true, 1, evict,
       {{"evict WORKER", "drain, and move its sessions now (announced to the app)"}}},
      {{"restart"}, true, 2, restart,
       {{"restart WORKER [SECONDS]", "drain (waiting up to SECONDS), stop, respawn, ready"}}},
      {{"reload"}, false, 0, reload, {{"reload", "re-read the configuration file (as SIGHUP)"}}},
      {{"upgrade"}, false, 0, upgrade,
       {{"upgrade", "start the proxy's binary anew; it takes over sockets and workers, this one exits"}}},
  };
  return table;
}

std::string helpText() {
  std::string text = "commands (append \"json\" to any for a JSON answer):";
  for (const Command& command : commandTable()) {
    for (const HelpLine& line : command.help) text += "\n  " + pad(line.usage, 30) + line.text;
  }
  return text;
}

// The command `words` asks for, or null.
const Command* findCommand(const std::vector<std::string>& words) {
  for (const Command& command : commandTable()) {
    if (words.size() < command.words.size()) continue;
    if (!std::equal(command.words.begin(), command.words.end(), words.begin())) continue;
    if (command.takes_worker || words.size() - command.words.size() <= command.max_args) return &command;
  }
  return nullptr;
}

// The worker named by args[0] of `command`, or null with an error answer sent.
Worker* workerArgument(WorkerControl& control, const Command& command, const Args& args, const Send& send) {
  std::string name(command.words[0]);
  if (args.empty()) {
    send(Answer::error(name + " needs a worker name; try \"help\""));
    return nullptr;
  }
  if (args.size() > command.max_args) {
    send(Answer::error("unexpected \"" + sanitized(args[command.max_args]) + "\" after " + name + "; try \"help\""));
    return nullptr;
  }
  Worker* worker = control.findWorker(args[0]);
  if (worker == nullptr) {
    std::string known;
    for (const auto& [known_name, w] : control.workers()) known += (known.empty() ? "" : ", ") + known_name;
    send(Answer::error("unknown worker \"" + sanitized(args[0]) + "\" (workers: " + known + ")"));
  }
  return worker;
}

}  // namespace

void AdminCommands::execute(const std::string& line, AdminServer::Reply reply) {
  std::vector<std::string> words = splitAdminWords(line);
  bool as_json = !words.empty() && words.back() == "json";
  if (as_json) words.pop_back();
  Send send = [reply, as_json](const Answer& answer) { reply(answer.render(as_json)); };
  if (words.empty()) {
    send(Answer::error("empty command; try \"help\""));
    return;
  }
  logInfo("admin: " + sanitized(line));
  const Command* command = findCommand(words);
  if (command == nullptr) {
    send(Answer::error("unknown command \"" + sanitized(line) + "\"; try \"help\""));
    return;
  }
  Args args(words.begin() + static_cast<std::ptrdiff_t>(command->words.size()), words.end());
  Worker* worker = nullptr;
  if (command->takes_worker) {
    worker = workerArgument(control_, *command, args, send);
    if (worker == nullptr) return;
  }
  command->run(control_, args, worker, send);
}

}  // namespace stickyproxy
