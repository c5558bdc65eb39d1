// The metrics listener, read-only:
//   GET /metrics      the Prometheus text format;
//   GET /status.json  the live state per worker the status page polls (ProxyMetrics::statusJson);
//   GET /             the status page (metrics/web/status.html, compiled in);
// every other path is 404.
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
  // Builds the JSON document of GET /status.json, under the same constraint.
  using StatusDocument = std::function<std::string()>;

  // `loop` (with a LoopContext) must outlive the server. Loop thread only.
  MetricsServer(uv_loop_t* loop, Exposition exposition, StatusDocument status);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Returns 0 or a libuv error code.
  int listen(const Endpoint& endpoint);
  // Serves on `fd`, the listening socket of a predecessor process (owned from here on).
  int adopt(int fd, const Endpoint& endpoint);
  Endpoint boundEndpoint() const { return server_.boundEndpoint(); }
  // The listening socket's descriptor, for a successor; -1 when none.
  int listeningFd() const;
  // Stops accepting; open scrapes get `grace` to finish. `done` runs when none is left.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  // As shutdown(), leaving the listening socket to a successor that adopted it.
  void handOver(std::chrono::milliseconds grace, std::function<void()> done);

 private:
  void handle(const ServerExchangePtr& exchange);

  Exposition exposition_;
  StatusDocument status_;
  HttpServer server_;
};

}  // namespace stickyproxy
