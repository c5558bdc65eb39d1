#include "proxy/net/loop_context.h"

namespace stickyproxy {

LoopContext::LoopContext(uv_loop_t* loop) : loop_(loop) {
  loop_->data = this;
  uv_check_init(loop_, &check_);
  check_.data = this;
  uv_idle_init(loop_, &idle_);
  idle_.data = this;
  uv_check_start(&check_, &LoopContext::onCheck);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
}

LoopContext::~LoopContext() { close(); }

LoopContext& LoopContext::of(uv_loop_t* loop) { return *static_cast<LoopContext*>(loop->data); }

void LoopContext::defer(std::function<void()> task) {
  tasks_.push_back(std::move(task));
  if (!closed_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
    uv_idle_start(&idle_, [](uv_idle_t*) {});
  }
}

void LoopContext::onCheck(uv_check_t* handle) { static_cast<LoopContext*>(handle->data)->runDeferred(); }

void LoopContext::runDeferred() {
  // Tasks may defer more tasks; those run on the next pass.
  while (!tasks_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(tasks_);
    for (auto& task : batch) task();
  }
  if (!closed_) uv_idle_stop(&idle_);
}

void LoopContext::close() {
  if (closed_) return;
  runDeferred();
  closed_ = true;
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  // The handles live inside this object: run the loop once so their close callbacks finish.
  uv_run(loop_, UV_RUN_NOWAIT);
  if (loop_->data == this) loop_->data = nullptr;
}

}  // namespace stickyproxy
