// The bundled backend application: one worker process of the analysis app (a C++ port of the
// malaria risk prioritisation app stickyproxy's users run).
//
// It keeps each session's state in this process and its files under this worker's own root on
// purpose, as the real app did: that is the state the proxy's stickiness protects. A session the
// worker does not know gets the real app's errors, unless the proxy announces with
// X-Sticky-Previous-Worker that it re-pinned the session here, in which case it is adopted.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <string>

#include "backend/app/app_context.h"
#include "backend/app/chat_routes.h"
#include "backend/app/export_routes.h"
#include "backend/app/session_operations.h"
#include "backend/app/upload_routes.h"
#include "backend/app/visualization_routes.h"
#include "proxy/http/http_server.h"
#include "proxy/net/timer.h"

namespace stickyproxy::backend {

class BackendApp {
 public:
  // Recovers the sessions found under this worker's root and starts expiring idle ones.
  // `loop` must outlive the app. Loop thread only.
  BackendApp(uv_loop_t* loop, BackendOptions options);

  // Answers one request. Bound to an HttpServer as its request callback. Never throws: a route
  // that throws is logged, counted (/system-health server_failures) and answered 500.
  void handle(const ServerExchangePtr& exchange);

  size_t sessionCount() const { return app_.sessions().size(); }

 private:
  // handle() without its boundary: picks the route.
  void route(const ServerExchangePtr& exchange);
  void systemHealth(const ServerExchangePtr& exchange);
  void sessionStatus(const ServerExchangePtr& exchange);
  void runAnalysis(const ServerExchangePtr& exchange);
  void clearSession(const ServerExchangePtr& exchange);
  void serveIndex(const ServerExchangePtr& exchange);

  AppContext app_;
  SessionOperations operations_;
  UploadRoutes uploads_;
  VisualizationRoutes visualizations_;
  ExportRoutes exports_;
  ChatRoutes chat_;
  std::chrono::steady_clock::time_point started_at_;
  Timer expiry_timer_;
};

}  // namespace stickyproxy::backend
