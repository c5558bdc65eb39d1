// A libuv timer owned by a C++ object.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace stickyproxy {

// One-shot or repeating timer. The callback never runs after stop() or destruction.
// `loop` must outlive the Timer. Loop thread only.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  // Closes the handle; its memory is released in uv_close's callback, so destroying a Timer
  // from inside its own callback is safe.
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer to fire once after `timeout`.
  void start(std::chrono::milliseconds timeout, std::function<void()> callback);
  // (Re)arms the timer to fire every `interval`.
  void startRepeating(std::chrono::milliseconds interval, std::function<void()> callback);
  void stop();
  bool armed() const { return armed_; }
  // Time until an armed timer fires, from the loop's cached "now" (0 when it is due or unarmed).
  std::chrono::milliseconds dueIn() const {
    return std::chrono::milliseconds(armed_ ? uv_timer_get_due_in(handle_) : 0);
  }
  // Lets the loop end while this timer is armed (for housekeeping that must not keep a
  // stopping process alive).
  void unref() { uv_unref(reinterpret_cast<uv_handle_t*>(handle_)); }

 private:
  static void onFire(uv_timer_t* handle);

  uv_timer_t* handle_;
  std::function<void()> callback_;
  bool repeating_ = false;
  bool armed_ = false;
};

}  // namespace stickyproxy
