#include "metrics/metrics_server.h"

#include "metrics/proxy_metrics.h"
#include "metrics/status_page.h"

namespace stickyproxy {

namespace {

// Scrapers send small requests without bodies; keep each connection cheap and short-lived.
ServerOptions metricsServerOptions() {
  ServerOptions options;
  options.limits.max_body = 1024;
  options.header_timeout = std::chrono::seconds(5);
  options.body_idle_timeout = std::chrono::seconds(5);
  options.keepalive_timeout = std::chrono::seconds(30);
  options.max_connections = 64;
  return options;
}

}  // namespace

MetricsServer::MetricsServer(uv_loop_t* loop, Exposition exposition, StatusDocument status)
    : exposition_(std::move(exposition)),
      status_(std::move(status)),
      server_(loop, metricsServerOptions(), [this](const ServerExchangePtr& exchange) { handle(exchange); }) {}

int MetricsServer::listen(const Endpoint& endpoint) { return server_.listen(endpoint); }

int MetricsServer::adopt(int fd, const Endpoint& endpoint) {
  int status = server_.adopt(fd, endpoint);
  return status != 0 ? status : server_.startAccepting();
}

int MetricsServer::listeningFd() const {
  std::vector<HttpServer::BoundSocket> sockets = server_.boundSockets();
  return sockets.empty() ? -1 : sockets.front().fd;
}

void MetricsServer::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  server_.shutdown(grace, std::move(done));
}

void MetricsServer::handOver(std::chrono::milliseconds grace, std::function<void()> done) {
  server_.handOver(grace, std::move(done));
}

void MetricsServer::handle(const ServerExchangePtr& exchange) {
  const RequestHead& request = exchange->request();
  HeaderList headers;
  headers.add("Cache-Control", "no-store");
  const std::string_view path = request.path();
  if (path != "/metrics" && path != "/status.json" && path != "/") {
    exchange->respond(404, "text/plain; charset=utf-8", "not found: try /metrics, /status.json or /\n",
                      std::move(headers));
    return;
  }
  // Read-only: nothing here changes the proxy (write actions stay on the admin socket).
  if (request.method != "GET" && request.method != "HEAD") {
    headers.add("Allow", "GET, HEAD");
    exchange->respond(405, "text/plain; charset=utf-8", "method not allowed\n", std::move(headers));
    return;
  }
  if (path == "/metrics") {
    exchange->respond(200, ProxyMetrics::kContentType, exposition_(), std::move(headers));
  } else if (path == "/status.json") {
    exchange->respond(200, "application/json", status_(), std::move(headers));
  } else {
    // The page loads nothing from elsewhere; say so, so a browser refuses anything injected.
    headers.add("Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                "img-src data:");
    headers.add("X-Content-Type-Options", "nosniff");
    exchange->respond(200, "text/html; charset=utf-8", std::string(statusPageHtml()), std::move(headers));
  }
}

}  // namespace stickyproxy
