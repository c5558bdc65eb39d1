// systemd's notify protocol (sd_notify, libsystemd): READY, RELOADING, STOPPING, STATUS, and the
// watchdog's keep-alive sent from the event loop, so a wedged loop is noticed and restarted.
// Without NOTIFY_SOCKET in the environment every call does nothing.
#pragma once

#include <uv.h>

#include <chrono>
#include <string>

#include "metrics/proxy_metrics.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

class ServiceNotifier {
 public:
  explicit ServiceNotifier(uv_loop_t* loop);
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // True when systemd (or anything listening on NOTIFY_SOCKET) waits for our messages.
  bool enabled() const { return enabled_; }
  // READY=1 with `status`; from the first one on, WATCHDOG=1 every half of WATCHDOG_USEC when
  // the unit asks for a watchdog.
  void ready(const std::string& status);
  // RELOADING=1 with `status`; ready() ends the reload.
  void reloading(const std::string& status);
  // STOPPING=1 with `status`; the watchdog stops.
  void stopping(const std::string& status);
  void status(const std::string& status);
  // MAINPID=`pid` with `status`: a successor (a binary upgrade) is the service's main process
  // from now on; this process sends nothing more.
  void handOver(int pid, const std::string& status);
  // Time between two watchdog messages (0 when there is no watchdog).
  std::chrono::microseconds watchdogInterval() const { return watchdog_interval_; }

 private:
  void send(const std::string& message);

  bool enabled_;
  std::chrono::microseconds watchdog_interval_{0};
  Timer watchdog_;
};

// "4 of 4 workers ready, 12 sessions, 3 requests in flight" (with each worker not ready named:
// "3 of 4 workers ready (w2 down), ...").
std::string serviceStatusLine(const ProxySnapshot& snapshot);

}  // namespace stickyproxy
