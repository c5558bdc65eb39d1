// A libuv loop for event-loop tests: runs until a condition holds or a deadline passes, and
// checks at the end that every handle was closed (uv_loop_close() == 0).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>

#include "proxy/net/loop_context.h"
#include "proxy/net/timer.h"

namespace stickyproxy::testing {

class TestLoop {
 public:
  TestLoop() {
    uv_loop_init(&loop_);
    context_ = std::make_unique<LoopContext>(&loop_);
  }
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until `done()` is true or `deadline` passes; returns done().
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
    bool timed_out = false;
    {
      Timer guard(&loop_);
      guard.start(deadline, [&] { timed_out = true; });
      Timer poll(&loop_);
      poll.startRepeating(std::chrono::milliseconds(1), [&] {
        if (done() || timed_out) uv_stop(&loop_);
      });
      uv_run(&loop_, UV_RUN_DEFAULT);
    }
    return done();
  }

  // Closes the loop context, lets close callbacks run, and returns uv_loop_close()'s result.
  int close() {
    uv_run(&loop_, UV_RUN_NOWAIT);
    context_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<LoopContext> context_;
};

}  // namespace stickyproxy::testing
