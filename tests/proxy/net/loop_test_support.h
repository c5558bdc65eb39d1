// A libuv loop of its own for event-loop tests, with the LoopContext the proxy's code expects:
// runs until a condition holds or a deadline passes, and checks at the end that every handle was
// closed (close() returns uv_loop_close()'s result). Declare it before the objects that use it,
// so that it is torn down after them.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "proxy/net/loop_context.h"

namespace stickyproxy::testing {

class TestLoop {
 public:
  TestLoop() {
    uv_loop_init(&loop_);
    context_.emplace(&loop_);
  }
  ~TestLoop() {
    // Only reached without close() when a test failed half-way: clean up as far as possible.
    if (!closed_) close();
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  uv_loop_t* get() { return &loop_; }

  // Runs the loop until `condition()` holds or `timeout` has passed, and returns
  // `condition()`. Wakes every few milliseconds too, so that conditions on outside state
  // (a file a child writes) are noticed.
  bool runUntil(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    struct Wakeups {
      uv_timer_t deadline;
      uv_timer_t tick;
      bool expired = false;
      int open = 2;
    } wakeups;
    wakeups.deadline.data = &wakeups;
    wakeups.tick.data = &wakeups;
    uv_update_time(&loop_);
    uv_timer_init(&loop_, &wakeups.deadline);
    uv_timer_init(&loop_, &wakeups.tick);
    uv_timer_start(
        &wakeups.deadline,
        [](uv_timer_t* timer) { static_cast<Wakeups*>(timer->data)->expired = true; },
        static_cast<uint64_t>(timeout.count()), 0);
    uv_timer_start(&wakeups.tick, [](uv_timer_t*) {}, 5, 5);
    while (!condition() && !wakeups.expired) uv_run(&loop_, UV_RUN_ONCE);
    auto closed = [](uv_handle_t* handle) { --static_cast<Wakeups*>(handle->data)->open; };
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeups.deadline), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeups.tick), closed);
    while (wakeups.open > 0) uv_run(&loop_, UV_RUN_NOWAIT);
    return condition();
  }

  // Runs the loop while anything is still closing or exiting (up to a deadline), then
  // returns uv_loop_close()'s result: 0 when every handle was closed.
  int close() {
    closed_ = true;
    context_->close();
    context_.reset();
    runUntil([this] { return !hasWork(); }, std::chrono::seconds(5));
    return uv_loop_close(&loop_);
  }

 private:
  // True while some handle other than runUntil's own two timers is active or closing.
  bool hasWork() {
    int busy = 0;
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void* arg) {
          if (uv_is_closing(handle) || uv_is_active(handle)) ++*static_cast<int*>(arg);
        },
        &busy);
    return busy > 2;
  }

  uv_loop_t loop_;
  std::optional<LoopContext> context_;
  bool closed_ = false;
};

}  // namespace stickyproxy::testing
