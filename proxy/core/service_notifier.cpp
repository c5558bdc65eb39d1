#include "proxy/core/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "proxy/core/access_log.h"

namespace stickyproxy {

ServiceNotifier::ServiceNotifier(uv_loop_t* loop) : enabled_(std::getenv("NOTIFY_SOCKET") != nullptr), watchdog_(loop) {
  uint64_t usec = 0;
  // Only for this process (WATCHDOG_PID), and only when systemd set an interval.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
  }
}

void ServiceNotifier::send(const std::string& message) {
  if (!enabled_) return;
  int result = sd_notify(0, message.c_str());
  if (result < 0) logError("sd_notify: " + std::string(std::strerror(-result)));
}

void ServiceNotifier::ready(const std::string& status) {
  send("READY=1\nSTATUS=" + status);
  if (watchdog_interval_.count() > 0 && !watchdog_.armed()) {
    auto every = std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_interval_);
    watchdog_.startRepeating(std::max(every, std::chrono::milliseconds(1)), [this] { send("WATCHDOG=1"); });
  }
}

void ServiceNotifier::reloading(const std::string& status) { send("RELOADING=1\nSTATUS=" + status); }

void ServiceNotifier::stopping(const std::string& status) {
  watchdog_.stop();
  send("STOPPING=1\nSTATUS=" + status);
}

void ServiceNotifier::status(const std::string& status) { send("STATUS=" + status); }

void ServiceNotifier::handOver(int pid, const std::string& status) {
  send("MAINPID=" + std::to_string(pid) + "\nSTATUS=" + status);
  watchdog_.stop();
  enabled_ = false;
}

std::string serviceStatusLine(const ProxySnapshot& snapshot) {
  size_t ready = 0;
  uint64_t sessions = 0;
  uint64_t in_flight = 0;
  std::string others;
  for (const WorkerSnapshot& worker : snapshot.workers) {
    sessions += worker.sessions;
    in_flight += worker.in_flight;
    if (worker.state == "ready") {
      ++ready;
    } else {
      others += (others.empty() ? "" : ", ") + worker.name + " " + worker.state;
    }
  }
  return std::to_string(ready) + " of " + std::to_string(snapshot.workers.size()) + " workers ready" +
         (others.empty() ? "" : " (" + others + ")") + ", " + std::to_string(sessions) + " sessions, " +
         std::to_string(in_flight) + " requests in flight";
}

}  // namespace stickyproxy
