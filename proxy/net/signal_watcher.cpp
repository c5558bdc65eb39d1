#include "proxy/net/signal_watcher.h"

namespace stickyproxy {

SignalWatcher::SignalWatcher(uv_loop_t* loop, int signum, std::function<void()> on_signal)
    : handle_(new uv_signal_t), on_signal_(std::move(on_signal)) {
  uv_signal_init(loop, handle_);
  handle_->data = this;
  uv_signal_start(handle_, [](uv_signal_t* handle, int) {
    auto* self = static_cast<SignalWatcher*>(handle->data);
    if (self != nullptr) self->on_signal_();
  }, signum);
}

SignalWatcher::~SignalWatcher() { close(); }

void SignalWatcher::close() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_signal_t*>(handle); });
  handle_ = nullptr;
}

}  // namespace stickyproxy
