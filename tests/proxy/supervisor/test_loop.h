// Helpers for supervisor tests: a private libuv loop driven until a condition or a deadline,
// and a temporary directory.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

#include "proxy/net/loop_context.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::test {

// A loop of its own, with the LoopContext the supervisor expects. Declare it before the
// objects that use it, so that it is torn down after them.
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
  bool runUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
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

using testing::fileExists;
using testing::readFile;
using testing::TempDir;

}  // namespace stickyproxy::test
