// Notices the exit of a process that need not be a child of this one, through a pidfd.
#pragma once

#include <uv.h>

#include <functional>

namespace stickyproxy {

// `loop` must outlive it. Loop thread only. The handle's memory is freed by uv_close's callback:
// run the loop once more after the last close before uv_loop_close().
class PidWatch {
 public:
  explicit PidWatch(uv_loop_t* loop) : loop_(loop) {}
  ~PidWatch() { close(); }
  PidWatch(const PidWatch&) = delete;
  PidWatch& operator=(const PidWatch&) = delete;

  // Watches `pid` (instead of any earlier one): `on_exit` runs once, on the loop, when it exits.
  // Returns 0, or a negative errno (-ESRCH: no such process).
  int watch(int pid, std::function<void()> on_exit);
  // Sends `signum` through the pidfd, so never to a process that reused the pid. 0 or -errno.
  int signal(int signum) const;
  bool watching() const { return handle_ != nullptr; }
  // Stops watching. Idempotent.
  void close();

 private:
  struct Handle;
  static void onReadable(uv_poll_t* poll, int status, int events);

  uv_loop_t* loop_;
  Handle* handle_ = nullptr;
};

}  // namespace stickyproxy
