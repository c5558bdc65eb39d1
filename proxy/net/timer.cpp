#include "proxy/net/timer.h"

namespace stickyproxy {

Timer::Timer(uv_loop_t* loop) : loop_(loop) {}

Timer::~Timer() {
  if (handle_ == nullptr) return;
  uv_timer_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
}

void Timer::setLoopTimer(uint64_t timeout, uint64_t repeat) {
  if (handle_ == nullptr) {
    handle_ = new uv_timer_t;
    uv_timer_init(loop_, handle_);
    handle_->data = this;
    if (unref_wanted_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }
  handle_due_ = uv_now(loop_) + timeout;
  uv_timer_start(handle_, &Timer::onFire, timeout, repeat);
  if (!unref_wanted_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
}

void Timer::start(std::chrono::milliseconds timeout, std::function<void()> callback) {
  callback_ = std::move(callback);
  const auto wait = static_cast<uint64_t>(std::max<int64_t>(0, timeout.count()));
  due_ = uv_now(loop_) + wait;
  const bool loop_timer_set =
      handle_ != nullptr && uv_is_active(reinterpret_cast<uv_handle_t*>(handle_)) && !repeating_;
  repeating_ = false;
  armed_ = true;
  if (loop_timer_set && handle_due_ <= due_) {
    // It fires first and is set again for the rest (onFire).
    if (!unref_wanted_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return;
  }
  setLoopTimer(wait, 0);
}

void Timer::startRepeating(std::chrono::milliseconds interval, std::function<void()> callback) {
  callback_ = std::move(callback);
  repeating_ = true;
  armed_ = true;
  auto period = static_cast<uint64_t>(std::max<int64_t>(1, interval.count()));
  setLoopTimer(period, period);
}

void Timer::stop() {
  armed_ = false;
  callback_ = nullptr;
  if (handle_ == nullptr) return;
  if (repeating_) {
    uv_timer_stop(handle_);
    return;
  }
  // A one-shot loop timer is left to fire for nothing; meanwhile it keeps no loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
}

std::chrono::milliseconds Timer::dueIn() const {
  if (!armed_) return std::chrono::milliseconds(0);
  if (repeating_) return std::chrono::milliseconds(uv_timer_get_due_in(handle_));
  uint64_t now = uv_now(loop_);
  return std::chrono::milliseconds(due_ > now ? due_ - now : 0);
}

void Timer::onFire(uv_timer_t* handle) {
  auto* self = static_cast<Timer*>(handle->data);
  if (self == nullptr || !self->armed_ || !self->callback_) return;
  if (!self->repeating_) {
    uint64_t now = uv_now(handle->loop);
    if (now < self->due_) {
      self->setLoopTimer(self->due_ - now, 0);  // re-armed for later meanwhile
      return;
    }
  }
  if (self->repeating_) {
    // Copy: the callback may destroy the Timer (and with it callback_) while it runs.
    auto callback = self->callback_;
    callback();
  } else {
    self->armed_ = false;
    auto callback = std::move(self->callback_);
    self->callback_ = nullptr;
    callback();
  }
}

}  // namespace stickyproxy
