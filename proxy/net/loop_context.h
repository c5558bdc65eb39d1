// Per-loop state shared by everything running on one libuv loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
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

  // What defer() can run without allocating: an object kept alive by the queue until then.
  class Deferred {
   public:
    virtual ~Deferred() = default;
    virtual void runDeferred() = 0;
  };

  // Runs `task` on the loop thread after the current callback has returned (this or the next
  // loop iteration). The place to destroy objects whose own callback is on the stack.
  void defer(std::function<void()> task);
  // The same for `object->runDeferred()`, in the same order as the tasks, with no allocation.
  void defer(std::shared_ptr<Deferred> object);
  // Keeps `object` alive until the current callback has returned, then drops this reference.
  void releaseLater(std::shared_ptr<void> object);
  // Runs what is still queued, then closes the loop's helper handles.
  void close();
  uv_loop_t* loop() const { return loop_; }
  // The read slabs streams on this loop share.
  SlabPool& slabs() { return slabs_; }
  // A buffer any code on the loop may fill and hand on within one call (a head to write with a
  // copying write): its contents last until its next user; its capacity stays between uses.
  std::string& scratch() { return scratch_; }

 private:
  static void onCheck(uv_check_t* handle);
  void runDeferred();

  uv_loop_t* loop_;
  uv_check_t check_;
  uv_idle_t idle_;  // active only while tasks wait, so the loop does not block in poll
  // One queued item: a task, an object to run, or an object to drop.
  struct Task {
    std::function<void()> call;
    std::shared_ptr<Deferred> object;
    std::shared_ptr<void> held;
  };
  void schedule(Task task);

  std::vector<Task> tasks_;
  std::vector<Task> running_;  // the batch being run; both keep their capacity
  bool in_run_ = false;
  SlabPool slabs_;
  std::string scratch_;
  bool closed_ = false;
};

}  // namespace stickyproxy
