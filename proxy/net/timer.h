// A libuv timer owned by a C++ object.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace stickyproxy {

// One-shot or repeating timer. The callback never runs after stop() or destruction.
// `loop` must outlive the Timer. Loop thread only.
//
// Re-arming a one-shot timer for later than the loop's timer is set for, and stopping one, leave
// the loop's timer where it is (it fires early and is set again for the rest, or fires for
// nothing, without keeping the loop alive): timeouts pushed back by every bit of progress cost
// no reordering of the loop's timer heap. A callback that captures only `this` (the owner of a
// member Timer) is stored without an allocation.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  // Closes the handle (if it was ever armed); its memory is released in uv_close's callback, so
  // destroying a Timer from inside its own callback is safe.
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
  std::chrono::milliseconds dueIn() const;
  // Lets the loop end while this timer is armed (for housekeeping that must not keep a
  // stopping process alive).
  void unref() {
    unref_wanted_ = true;
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }

 private:
  static void onFire(uv_timer_t* handle);
  // Sets the loop's timer to fire in `timeout` ms (`repeat`: then every `repeat` ms).
  void setLoopTimer(uint64_t timeout, uint64_t repeat);

  uv_loop_t* loop_;
  uv_timer_t* handle_ = nullptr;  // made when first armed: a timer that never runs costs nothing
  std::function<void()> callback_;
  uint64_t due_ = 0;         // loop time at which an armed one-shot timer fires
  uint64_t handle_due_ = 0;  // loop time the loop's timer is set for (no earlier than due_ when armed)
  bool repeating_ = false;
  bool armed_ = false;
  bool unref_wanted_ = false;
};

}  // namespace stickyproxy
