#include "proxy/net/timer.h"

namespace stickyproxy {

Timer::Timer(uv_loop_t* loop) : handle_(new uv_timer_t) {
  uv_timer_init(loop, handle_);
  handle_->data = this;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
}

void Timer::start(std::chrono::milliseconds timeout, std::function<void()> callback) {
  callback_ = std::move(callback);
  repeating_ = false;
  armed_ = true;
  uv_timer_start(handle_, &Timer::onFire, static_cast<uint64_t>(std::max<int64_t>(0, timeout.count())), 0);
}

void Timer::startRepeating(std::chrono::milliseconds interval, std::function<void()> callback) {
  callback_ = std::move(callback);
  repeating_ = true;
  armed_ = true;
  auto period = static_cast<uint64_t>(std::max<int64_t>(1, interval.count()));
  uv_timer_start(handle_, &Timer::onFire, period, period);
}

void Timer::stop() {
  armed_ = false;
  uv_timer_stop(handle_);
  callback_ = nullptr;
}

void Timer::onFire(uv_timer_t* handle) {
  auto* self = static_cast<Timer*>(handle->data);
  if (self == nullptr || !self->callback_) return;
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
