// The bundled backend application: one worker process of the analysis app.
//
// This first part answers the routes the proxy and operators rely on (/ping, /system-health)
// and marks every response with X-Worker. The analysis routes build on it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "proxy/http/http_server.h"

namespace stickyproxy::backend {

struct BackendOptions {
  std::string name = "w0";  // this worker's name, echoed in X-Worker
  std::string state_dir;    // files live under <state_dir>/<name>/
};

class BackendApp {
 public:
  explicit BackendApp(BackendOptions options);

  // Answers one request. Bound to an HttpServer as its request callback.
  void handle(const ServerExchangePtr& exchange);

  size_t sessionCount() const { return 0; }

 private:
  void respondJson(const ServerExchangePtr& exchange, int status, const std::string& json);

  BackendOptions options_;
  std::chrono::steady_clock::time_point started_at_;
};

}  // namespace stickyproxy::backend
