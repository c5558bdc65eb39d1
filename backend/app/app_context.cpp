#include "backend/app/app_context.h"

#include <cstdio>

#include "proxy/http/gzip_encoder.h"
#include "proxy/routing/session_key.h"

namespace stickyproxy::backend {

std::string Answer::message() const {
  auto it = body.find("message");
  return it != body.end() && it->second.is<std::string>() ? it->second.get<std::string>() : std::string();
}

Answer Answer::success(picojson::object fields) {
  Answer answer;
  answer.body = std::move(fields);
  answer.body["status"] = picojson::value("success");
  return answer;
}

Answer Answer::error(ErrorKind kind, std::string message) {
  Answer answer;
  answer.http_status = httpStatusOf(kind);
  answer.body["status"] = picojson::value("error");
  answer.body["message"] = picojson::value(std::move(message));
  return answer;
}

AppContext::AppContext(uv_loop_t* loop, BackendOptions options)
    : loop_(loop),
      options_(std::move(options)),
      sessions_(options_.state_dir, options_.name, options_.session_idle_timeout) {
  sessions_.setMemoryBudget(options_.memory_budget_bytes);
}

std::string AppContext::cookieSessionId(const RequestHead& request) {
  const std::string* cookie = request.headers.find("Cookie");
  if (cookie == nullptr) return {};
  std::optional<std::string_view> value = findCookie(*cookie, kSessionCookie);
  if (!value || !SessionStore::isValidId(*value)) return {};
  return std::string(*value);
}

SessionState* AppContext::sessionOf(const RequestHead& request) {
  std::string id = cookieSessionId(request);
  if (id.empty()) return nullptr;
  if (SessionState* known = sessions_.find(id, now())) return known;
  const std::string* previous = request.headers.find(kPreviousWorkerHeader);
  if (previous == nullptr) return nullptr;
  std::string error;
  std::string source;
  SessionState* adopted = sessions_.adopt(id, *previous, now(), &error, &source);
  if (adopted != nullptr) {
    log("adopted session " + shortKeyHash(id) + " from " + source +
        (source == *previous ? std::string() : " (announced from " + *previous + ")"));
  } else {
    log("could not adopt session " + shortKeyHash(id) + ": " + error);
  }
  return adopted;
}

SessionState* AppContext::sessionOrCreate(const RequestHead& request, std::string* error) {
  if (SessionState* existing = sessionOf(request)) return existing;
  return sessions_.create(now(), error);
}

std::string AppContext::sessionCookie(std::string_view id) const {
  if (id.empty()) return buildSetCookie(kSessionCookie, "", std::chrono::seconds(0), false);
  auto max_age = std::chrono::duration_cast<std::chrono::seconds>(options_.session_idle_timeout);
  return buildSetCookie(kSessionCookie, id, max_age, false);
}

HeaderList AppContext::baseHeaders() const {
  HeaderList headers;
  headers.add("X-Worker", options_.name);
  headers.add("Cache-Control", "no-store");
  return headers;
}

void AppContext::respond(const ServerExchangePtr& exchange, const Answer& answer, const SessionState* session) {
  HeaderList headers = baseHeaders();
  if (session != nullptr && cookieSessionId(exchange->request()) != session->id) {
    headers.add("Set-Cookie", sessionCookie(session->id));
  }
  send(exchange, answer.http_status, "application/json", picojson::value(answer.body).serialize(), std::move(headers));
}

bool AppContext::compressibleType(std::string_view content_type) {
  const std::string_view type = content_type.substr(0, content_type.find(';'));
  return type.starts_with("text/") || type == "application/json" || type == "image/svg+xml" ||
         type == "application/javascript";
}

bool AppContext::gzipFor(const RequestHead& request, std::string_view content_type, std::optional<uint64_t> bytes) {
  return compressibleType(content_type) && (!bytes || *bytes >= kMinGzipBytes) &&
         acceptsGzip(request.headers.find("Accept-Encoding"));
}

void AppContext::send(const ServerExchangePtr& exchange, int status, std::string_view content_type, std::string body,
                      HeaderList headers) {
  if (compressibleType(content_type)) headers.add("Vary", "Accept-Encoding");
  if (gzipFor(exchange->request(), content_type, body.size())) {
    std::string gz = GzipEncoder::compress(body, kGzipLevel);
    if (!gz.empty()) {
      body = std::move(gz);
      headers.add("Content-Encoding", "gzip");
    }
  }
  exchange->respond(status, content_type, std::move(body), std::move(headers));
}

void AppContext::respond(const std::weak_ptr<ServerExchange>& exchange, const Answer& answer,
                         const SessionState* session) {
  if (auto live = exchange.lock()) respond(live, answer, session);
}

void AppContext::respondError(const ServerExchangePtr& exchange, ErrorKind kind, std::string message) {
  respond(exchange, Answer::error(kind, std::move(message)));
}

Answer AppContext::failure(const AppError& error) {
  if (error.kind == ErrorKind::kServerIo) noteServerFailure(error.message, error.detail);
  return Answer::error(error.kind, error.message);
}

Answer AppContext::serverFailure(std::string message, std::string_view detail) {
  noteServerFailure(message, detail);
  return Answer::error(ErrorKind::kServerIo, std::move(message));
}

void AppContext::noteRejected(std::string_view reason, std::string_view detail) {
  auto it = rejections_.find(reason);
  if (it == rejections_.end()) it = rejections_.emplace(std::string(reason), 0).first;
  ++it->second;
  log("rejected (" + std::string(reason) + "): " + std::string(detail));
}

Answer AppContext::dataFailure(const DataStatus& status, std::string_view reason, std::string io_message) {
  const ErrorKind kind = errorKindOf(status.code());
  if (kind == ErrorKind::kServerIo) return serverFailure(std::move(io_message), status.message());
  noteRejected(reason, status.message());
  return Answer::error(kind, status.message());
}

void AppContext::noteServerFailure(std::string_view what, std::string_view detail) {
  ++server_failures_;
  log("server failure: " + std::string(what) + (detail.empty() ? std::string() : ": " + std::string(detail)));
}

void AppContext::log(std::string_view line) const {
  std::fprintf(stderr, "stickyproxy-backend[%s]: %.*s\n", options_.name.c_str(), static_cast<int>(line.size()),
               line.data());
}

}  // namespace stickyproxy::backend
