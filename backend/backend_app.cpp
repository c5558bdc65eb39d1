#include "backend/backend_app.h"

#include <unistd.h>

#include <picojson.h>

#include "backend/app/exchange_io.h"
#include "backend/web/web_assets.h"
#include "proxy/http/gzip_encoder.h"
#include "proxy/routing/session_key.h"

namespace stickyproxy::backend {

namespace {

// How often idle sessions are looked for: often enough that expiry is timely, rarely enough
// to cost nothing.
std::chrono::milliseconds expiryInterval(std::chrono::milliseconds idle_timeout) {
  return std::clamp<std::chrono::milliseconds>(idle_timeout / 4, std::chrono::seconds(1), std::chrono::minutes(1));
}

// "/a/b/c" with prefix "/a/" -> "b/c" split at '/' into at most `parts` pieces; empty pieces
// or more pieces than asked fail.
std::optional<std::vector<std::string_view>> splitAfter(std::string_view path, std::string_view prefix, size_t parts) {
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  path.remove_prefix(prefix.size());
  std::vector<std::string_view> pieces;
  while (!path.empty() || pieces.size() < parts) {
    size_t slash = path.find('/');
    std::string_view piece = path.substr(0, slash);
    if (piece.empty()) return std::nullopt;
    pieces.push_back(piece);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (pieces.size() != parts) return std::nullopt;
  return pieces;
}

}  // namespace

BackendApp::BackendApp(uv_loop_t* loop, BackendOptions options)
    : app_(loop, std::move(options)),
      operations_(app_),
      uploads_(app_, operations_),
      visualizations_(app_, operations_),
      exports_(app_, operations_, visualizations_),
      chat_(app_, operations_, visualizations_, exports_),
      started_at_(std::chrono::steady_clock::now()),
      expiry_timer_(loop) {
  std::string recover_error;
  size_t recovered = app_.sessions().recover(app_.now(), &recover_error);
  if (recovered > 0) app_.log("recovered " + std::to_string(recovered) + " sessions from disk");
  if (!recover_error.empty()) app_.noteServerFailure("cannot recover every session from disk", recover_error);
  expiry_timer_.startRepeating(expiryInterval(app_.options().session_idle_timeout), [this] {
    size_t expired = app_.sessions().expireIdle(app_.now());
    if (expired > 0) app_.log("expired " + std::to_string(expired) + " idle sessions");
  });
  expiry_timer_.unref();
}

void BackendApp::handle(const ServerExchangePtr& exchange) {
  // The boundary: whatever a route throws on the loop (a std::filesystem call without an
  // error_code, a JSON accessor on the wrong type, std::bad_alloc) is logged and counted, and
  // answered 500 when nothing was sent yet; it never ends the worker with every session on it.
  try {
    route(exchange);
  } catch (const std::exception& failure) {
    app_.noteServerFailure("a request failed", std::string(exchange->request().path()) + ": " + failure.what());
    if (exchange->active() && !exchange->headSent()) {
      app_.respondError(exchange, ErrorKind::kServerIo, "Internal error");
    } else {
      exchange->abort();
    }
  }
}

void BackendApp::route(const ServerExchangePtr& exchange) {
  const RequestHead& request = exchange->request();
  const std::string_view path = request.path();
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  // The proxy announces a re-pin on one request only, whatever its route (often the page
  // itself): adopt the session now, so the routes after it find it here.
  if (request.headers.find(kPreviousWorkerHeader) != nullptr) app_.sessionOf(request);
  auto only = [&](bool allowed, const char* allow) {
    if (allowed) return true;
    HeaderList headers = app_.baseHeaders();
    headers.add("Allow", allow);
    exchange->respond(405, "application/json", R"({"status":"error","message":"Method not allowed"})",
                      std::move(headers));
    return false;
  };

  if (path == "/" || path == "/index.html") {
    if (only(get, "GET")) serveIndex(exchange);
  } else if (path == "/ping") {
    picojson::object body;
    body["status"] = picojson::value("ok");
    body["worker"] = picojson::value(app_.options().name);
    Answer answer;
    answer.body = std::move(body);
    app_.respond(exchange, answer);
  } else if (path == "/system-health") {
    systemHealth(exchange);
  } else if (path == "/session_status") {
    if (only(get, "GET")) sessionStatus(exchange);
  } else if (path == "/upload_both_files") {
    if (only(post, "POST")) uploads_.uploadBothFiles(exchange);
  } else if (path == "/upload/chunk") {
    if (only(post, "POST")) uploads_.uploadChunk(exchange);
  } else if (path == "/upload/finalize") {
    if (only(post, "POST")) uploads_.finalizeUpload(exchange);
  } else if (path == "/run_analysis") {
    if (only(post, "POST")) runAnalysis(exchange);
  } else if (path == "/get_visualization") {
    if (only(post, "POST")) visualizations_.getVisualization(exchange);
  } else if (path == "/navigate_composite_map") {
    if (only(post, "POST")) visualizations_.navigateCompositeMap(exchange);
  } else if (path.starts_with("/serve_viz_file/")) {
    auto parts = splitAfter(path, "/serve_viz_file/", 2);
    if (only(get, "GET")) visualizations_.serveFile(exchange, parts ? (*parts)[0] : "", parts ? (*parts)[1] : "");
  } else if (path == "/send_message_streaming") {
    if (only(post, "POST")) chat_.sendMessage(exchange, true);
  } else if (path == "/send_message") {
    if (only(post, "POST")) chat_.sendMessage(exchange, false);
  } else if (path.starts_with("/export/list/")) {
    auto parts = splitAfter(path, "/export/list/", 1);
    if (only(get, "GET")) exports_.list(exchange, parts ? (*parts)[0] : "");
  } else if (path.starts_with("/export/download/")) {
    auto parts = splitAfter(path, "/export/download/", 2);
    if (only(get, "GET")) exports_.download(exchange, parts ? (*parts)[0] : "", parts ? (*parts)[1] : "");
  } else if (path == "/generate_report") {
    if (only(post, "POST")) exports_.generateReport(exchange);
  } else if (path.starts_with("/download_report/")) {
    auto parts = splitAfter(path, "/download_report/", 1);
    if (only(get, "GET")) exports_.downloadReport(exchange, parts ? (*parts)[0] : "");
  } else if (path == "/clear_session") {
    if (only(post, "POST")) clearSession(exchange);
  } else {
    app_.respondError(exchange, ErrorKind::kNotFound, "Not found");
  }
}

void BackendApp::serveIndex(const ServerExchangePtr& exchange) {
  constexpr std::string_view kType = "text/html; charset=utf-8";
  HeaderList headers = app_.baseHeaders();
  headers.add("X-Content-Type-Options", "nosniff");
  if (AppContext::gzipFor(exchange->request(), kType, webIndexHtml().size())) {
    // The page never changes while the process runs: compressed once, at its best level.
    static const std::string compressed = GzipEncoder::compress(webIndexHtml(), 9);
    headers.add("Vary", "Accept-Encoding");
    headers.add("Content-Encoding", "gzip");
    return exchange->respond(200, kType, compressed, std::move(headers));
  }
  app_.send(exchange, 200, kType, std::string(webIndexHtml()), std::move(headers));
}

void BackendApp::systemHealth(const ServerExchangePtr& exchange) {
  auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
  picojson::object body;
  body["status"] = picojson::value("healthy");
  body["worker"] = picojson::value(app_.options().name);
  body["pid"] = picojson::value(static_cast<double>(::getpid()));
  body["uptime_s"] = picojson::value(uptime);
  body["sessions"] = picojson::value(static_cast<double>(sessionCount()));
  picojson::object rejected;
  for (const auto& [reason, count] : app_.rejections()) rejected[reason] = picojson::value(static_cast<double>(count));
  body["rejected_requests"] = picojson::value(std::move(rejected));
  body["server_failures"] = picojson::value(static_cast<double>(app_.serverFailures()));
  Answer answer;
  answer.body = std::move(body);
  app_.respond(exchange, answer);
}

void BackendApp::sessionStatus(const ServerExchangePtr& exchange) {
  SessionState* session = app_.sessionOf(exchange->request());
  picojson::object fields;
  fields["session_id"] = session ? picojson::value(session->id) : picojson::value();
  fields["csv_loaded"] = picojson::value(session != nullptr && session->csv_loaded);
  fields["shapefile_loaded"] = picojson::value(session != nullptr && session->shapefile_loaded);
  fields["analysis_complete"] = picojson::value(session != nullptr && session->analysis_complete);
  picojson::array variables;
  if (session != nullptr) {
    for (const std::string& variable : session->variables_used) variables.emplace_back(variable);
  }
  fields["variables_used"] = picojson::value(std::move(variables));
  fields["worker"] = picojson::value(app_.options().name);
  app_.respond(exchange, Answer::success(std::move(fields)), session);
}

void BackendApp::runAnalysis(const ServerExchangePtr& exchange) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    std::vector<std::string> variables;
    auto selected = body.find("selected_variables");
    if (selected != body.end() && !selected->second.is<picojson::null>()) {
      if (!selected->second.is<picojson::array>()) {
        return app_.respondError(live, ErrorKind::kBadInput, "selected_variables must be a list of column names");
      }
      for (const picojson::value& item : selected->second.get<picojson::array>()) {
        if (!item.is<std::string>()) {
          return app_.respondError(live, ErrorKind::kBadInput, "selected_variables must be a list of column names");
        }
        variables.push_back(item.get<std::string>());
      }
    }
    SessionState* session = app_.sessionOf(live->request());
    if (session == nullptr) return app_.respondError(live, ErrorKind::kBadInput, std::string(kUploadBothFirstMessage));
    operations_.runAnalysis(session->id, std::move(variables), [this, weak](Answer answer) {
      app_.respond(weak, answer);
    });
  });
}

void BackendApp::clearSession(const ServerExchangePtr& exchange) {
  // The body carries nothing we need, but it is read first: an answer sent before the request
  // is complete would cost the connection.
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object) {
    auto live = weak.lock();
    if (!live) return;
    SessionState* session = app_.sessionOf(live->request());
    if (session != nullptr) {
      app_.log("cleared session " + shortKeyHash(session->id));
      app_.sessions().remove(session->id);
    }
    HeaderList headers = app_.baseHeaders();
    headers.add("Set-Cookie", app_.sessionCookie(""));
    live->respond(200, "application/json",
                  R"({"status":"success","message":"Session cleared: uploads, results and maps removed"})",
                  std::move(headers));
  });
}

}  // namespace stickyproxy::backend
