// Per-loop state shared by everything running on one libuv loop.
#pragma once

#include <uv.h>

#include <functional>
#include <vector>

#include "proxy/net/slab_pool.h"

namespace stickyproxy {

// Owns the loop's deferred-task queue. One per loop; reachable from the loop through
// LoopContext::of(). Keeping such state per loop (never global) is what lets more loops,
// one per thread, come later.
class LoopContext {
 public:
  // Registers itself as `loop->data`. `loop` must outlive it; close() before uv_loop_close.
  explicit LoopContext(uv_loop_t* loop);
  ~LoopContext();
  LoopContext(const LoopContext&) = delete;
  LoopContext& operator=(const LoopContext&) = delete;

  // The context registered for `loop`.
  static LoopContext& of(uv_loop_t* loop);

  // Runs `task` on the loop thread after the current callback has returned (this or the next
  // loop iteration). The place to destroy objects whose own callback is on the stack.
  void defer(std::function<void()> task);
  // Runs what is still queued, then closes the loop's helper handles.
  void close();
  uv_loop_t* loop() const { return loop_; }
  // The read slabs streams on this loop share.
  SlabPool& slabs() { return slabs_; }

 private:
  static void onCheck(uv_check_t* handle);
  void runDeferred();

  uv_loop_t* loop_;
  uv_check_t check_;
  uv_idle_t idle_;  // active only while tasks wait, so the loop does not block in poll
  std::vector<std::function<void()>> tasks_;
  SlabPool slabs_;
  bool closed_ = false;
};

}  // namespace stickyproxy
