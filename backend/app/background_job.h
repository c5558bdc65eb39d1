// Running slow, self-contained work (parsing uploads, the analysis, rendering maps, building
// zips) off the event loop, so one user's analysis never stalls another user's stream.
#pragma once

#include <uv.h>

#include <functional>

namespace stickyproxy::backend {

// Runs `work` on libuv's thread pool, then `done` on the loop thread. `work` must touch only
// what it owns or what is immutable while it runs (copies, shared_ptr<const ...>); session state
// is updated in `done`, which re-finds the session by id because it may have gone meanwhile.
void runInBackground(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace stickyproxy::backend
