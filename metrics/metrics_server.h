// The metrics listener: GET /metrics answers the Prometheus text format; every other path is
// 404 (GET / is reserved for the status page).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "proxy/http/http_server.h"
#include "proxy/net/endpoint.h"

namespace stickyproxy {

class MetricsServer {
 public:
  // Builds the exposition text for one scrape. Runs on the loop thread, so it must be quick.
  using Exposition = std::function<std::string()>;

  // `loop` (with a LoopContext) must outlive the server. Loop thread only.
  MetricsServer(uv_loop_t* loop, Exposition exposition);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Returns 0 or a libuv error code.
  int listen(const Endpoint& endpoint);
  Endpoint boundEndpoint() const { return server_.boundEndpoint(); }
  // Stops accepting; open scrapes get `grace` to finish. `done` runs when none is left.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);

 private:
  void handle(const ServerExchangePtr& exchange);

  Exposition exposition_;
  HttpServer server_;
};

}  // namespace stickyproxy
