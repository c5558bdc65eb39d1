// A POSIX signal delivered on the loop thread.
#pragma once

#include <uv.h>

#include <functional>

namespace stickyproxy {

// Calls `on_signal` on the loop thread each time `signum` arrives. `loop` must outlive it;
// close() (or destruction) stops it, and the handle's memory is released in uv_close's callback.
class SignalWatcher {
 public:
  SignalWatcher(uv_loop_t* loop, int signum, std::function<void()> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Idempotent.
  void close();

 private:
  uv_signal_t* handle_;
  std::function<void()> on_signal_;
};

}  // namespace stickyproxy
