// Keep-alive connections to one worker.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "proxy/http/http_client.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

struct PoolOptions {
  size_t max_idle = 32;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  size_t write_high_water = 256 * 1024;
  ParserLimits response_limits{1024 * 1024, 64 * 1024, 200, 0};
};

// Creates a pool of keep-alive connections to `endpoint`. `loop` must outlive the pool.
// Not thread-safe: loop thread only.
class UpstreamPool {
 public:
  using AcquireCallback = std::function<void(ClientConnectionPtr connection, int status, bool reused)>;

  UpstreamPool(uv_loop_t* loop, Endpoint endpoint, PoolOptions options);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Hands out an idle connection at once, or connects a new one. `done` gets the connection
  // and 0, or nullptr and a libuv error code. `done` is never called from inside acquire().
  void acquire(AcquireCallback done);
  // The most recently used idle connection that is still reusable, or nullptr (then acquire()
  // connects). Unlike acquire(), hands it over in the caller's own call stack.
  ClientConnectionPtr takeIdle();
  // Takes a connection back after an exchange: kept when reusable and the pool has room.
  void release(ClientConnectionPtr connection);
  // Closes every idle connection (the worker went away or changed address).
  void closeIdle();
  void setOptions(PoolOptions options) { options_ = options; }
  void setEndpoint(Endpoint endpoint);
  const Endpoint& endpoint() const { return endpoint_; }
  size_t idleCount() const { return idle_.size(); }

 private:
  void sweep();

  uv_loop_t* loop_;
  Endpoint endpoint_;
  PoolOptions options_;
  std::vector<ClientConnectionPtr> idle_;  // most recently used at the back
  Timer sweep_timer_;
};

}  // namespace stickyproxy
