// Active health probes: GET <path> against a worker, success on a 2xx or 3xx answer in time.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

#include "proxy/net/endpoint.h"

namespace stickyproxy {

// Runs one probe of `endpoint`; `done(true)` on a 2xx/3xx response within `timeout`, else
// `done(false)` with a reason. `done` is called exactly once, never from inside probeOnce.
void probeOnce(uv_loop_t* loop, const Endpoint& endpoint, const std::string& path,
               std::chrono::milliseconds timeout,
               std::function<void(bool healthy, const std::string& reason)> done);

}  // namespace stickyproxy
