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

void LoopContext::defer(std::function<void()> task) { schedule(Task{std::move(task), nullptr, nullptr}); }

void LoopContext::defer(std::shared_ptr<Deferred> object) { schedule(Task{nullptr, std::move(object), nullptr}); }

void LoopContext::releaseLater(std::shared_ptr<void> object) { schedule(Task{nullptr, nullptr, std::move(object)}); }

void LoopContext::schedule(Task task) {
  tasks_.push_back(std::move(task));
  if (!closed_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
    uv_idle_start(&idle_, [](uv_idle_t*) {});
  }
}

void LoopContext::onCheck(uv_check_t* handle) { static_cast<LoopContext*>(handle->data)->runDeferred(); }

void LoopContext::runDeferred() {
  if (in_run_) return;  // a task that closes the context: the outer pass goes on
  in_run_ = true;
  // Tasks may defer more tasks; those run on the next pass.
  while (!tasks_.empty()) {
    running_.swap(tasks_);
    for (Task& task : running_) {
      if (task.call) {
        task.call();
      } else if (task.object) {
        task.object->runDeferred();
      }
    }
    running_.clear();
  }
  in_run_ = false;
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
