// Running slow, self-contained work off the event loop (the app's analyses, maps and zips; the
// proxy's state-file writes), so that it never stalls the other connections.
#pragma once

#include <uv.h>

#include <functional>

namespace stickyproxy {

// Runs `work` on libuv's thread pool, then `done` on the loop thread. `work` must touch only
// what it owns or what is immutable while it runs (copies, shared_ptr<const ...>); shared state
// is updated in `done`, which must re-find what it updates because it may have gone meanwhile.
void runInBackground(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace stickyproxy
