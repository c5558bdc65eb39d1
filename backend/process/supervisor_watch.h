// A worker's watch on the proxy that supervises it, so that no worker outlives its supervisor
// holding its socket, while a binary upgrade's successor may adopt it.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <string>

#include "proxy/net/pid_watch.h"

namespace stickyproxy::backend {

// Watches the process named by STICKYPROXY_SUPERVISOR_PID. When it exits, the pid in
// STICKYPROXY_SUPERVISOR_PIDFILE, if another live process, is watched instead (a successor
// writes it before its predecessor exits); otherwise `on_gone` runs once. Started any other way
// (no STICKYPROXY_SUPERVISOR_PID) it watches nothing. `loop` must outlive it; loop thread only.
class SupervisorWatch {
 public:
  SupervisorWatch(uv_loop_t* loop, std::string log_prefix, std::function<void()> on_gone);
  SupervisorWatch(const SupervisorWatch&) = delete;
  SupervisorWatch& operator=(const SupervisorWatch&) = delete;

  // False when the supervisor named in the environment is already gone.
  bool start();
  // Stops watching. Idempotent.
  void close() { watch_.close(); }

 private:
  // Watches `pid`; false when it is gone.
  bool watch(pid_t pid);
  void supervisorExited();

  std::string log_prefix_;
  std::function<void()> on_gone_;
  std::string pid_file_;
  pid_t pid_ = 0;
  PidWatch watch_;
};

}  // namespace stickyproxy::backend
