#include "backend/backend_app.h"

#include <unistd.h>

#include <picojson.h>

namespace stickyproxy::backend {

BackendApp::BackendApp(BackendOptions options)
    : options_(std::move(options)), started_at_(std::chrono::steady_clock::now()) {}

void BackendApp::respondJson(const ServerExchangePtr& exchange, int status, const std::string& json) {
  HeaderList headers;
  headers.add("X-Worker", options_.name);
  headers.add("Cache-Control", "no-store");
  exchange->respond(status, "application/json", json, std::move(headers));
}

void BackendApp::handle(const ServerExchangePtr& exchange) {
  const RequestHead& request = exchange->request();
  std::string_view path = request.path();
  if (path == "/ping") {
    picojson::object body;
    body["status"] = picojson::value("ok");
    body["worker"] = picojson::value(options_.name);
    respondJson(exchange, 200, picojson::value(body).serialize());
    return;
  }
  if (path == "/system-health") {
    auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
    picojson::object body;
    body["status"] = picojson::value("healthy");
    body["worker"] = picojson::value(options_.name);
    body["pid"] = picojson::value(static_cast<double>(::getpid()));
    body["uptime_s"] = picojson::value(uptime);
    body["sessions"] = picojson::value(static_cast<double>(sessionCount()));
    respondJson(exchange, 200, picojson::value(body).serialize());
    return;
  }
  picojson::object body;
  body["status"] = picojson::value("error");
  body["message"] = picojson::value("Not found");
  respondJson(exchange, 404, picojson::value(body).serialize());
}

}  // namespace stickyproxy::backend
