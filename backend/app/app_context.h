// What every route of the bundled app shares: its options, the worker's sessions, and the
// conventions of its answers (JSON with `status`, X-Worker, the chatmrpt_session cookie).
#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <picojson.h>

#include "backend/app/app_error.h"
#include "backend/app/uploaded_data.h"
#include "backend/session/session_store.h"
#include "proxy/http/http_server.h"

namespace stickyproxy::backend {

// The app's own session cookie, as the real app named it.
inline constexpr std::string_view kSessionCookie = "chatmrpt_session";
// Sent by stickyproxy on the first request of a session it re-pinned away from `<name>`.
inline constexpr std::string_view kPreviousWorkerHeader = "X-Sticky-Previous-Worker";

struct BackendOptions {
  std::string name = "w0";   // this worker's name, echoed in X-Worker
  std::string state_dir;     // sessions live under <state_dir>/<name>/uploads/
  std::chrono::milliseconds session_idle_timeout{std::chrono::hours(24)};
  UploadLimits upload;
  size_t max_json_body = 64 * 1024;
  size_t max_chunk_bytes = 16ull << 20;  // one /upload/chunk part
  uint32_t max_chunks = 4096;            // per file of a chunked upload
  size_t composite_maps_per_page = 4;
  std::chrono::milliseconds chat_token_interval{15};  // pause between streamed chat events
  // Parsed data (uploads and analyses) kept in memory before the least recently used sessions'
  // is dropped, to be reloaded from their files (SessionStore::noteLoaded); 0: no limit. The
  // default lets four workers with 500 sessions between them stay within 4 GiB: a 400-ward
  // session holds about 1 MiB, and each worker keeps room for its own code, buffers and maps.
  size_t memory_budget_bytes = kDefaultMemoryBudget;
  static constexpr size_t kDefaultMemoryBudget = 512ull << 20;
};

// An operation's answer, ready to send: HTTP status and JSON body ({"status": "success", ...}
// or {"status": "error", "message": ...}).
struct Answer {
  int http_status = 200;
  picojson::object body;

  bool ok() const { return http_status < 400; }
  std::string message() const;
  static Answer success(picojson::object fields = {});
  // A failure of `kind`, with the status httpStatusOf(kind). `message` goes to the client as it
  // is: no server path or system error text in it (see app_error.h).
  static Answer error(ErrorKind kind, std::string message);
};

class AppContext {
 public:
  // `loop` must outlive the context. Loop thread only.
  AppContext(uv_loop_t* loop, BackendOptions options);

  uv_loop_t* loop() const { return loop_; }
  const BackendOptions& options() const { return options_; }
  SessionStore& sessions() { return sessions_; }
  const SessionStore& sessions() const { return sessions_; }
  WallClock::time_point now() const { return WallClock::now(); }

  // The session named by the request's chatmrpt_session cookie, when this worker holds it and
  // its files (SessionStore::find). Otherwise, when the request carries X-Sticky-Previous-Worker
  // (the proxy re-pinned the session here), it is adopted from whichever worker of this
  // state_dir holds its files, the named one first (SessionStore::adopt). Without that header
  // an unknown session stays unknown even when its files sit on another worker: that worker may
  // be alive and still answering for it. nullptr when there is no such session here: callers
  // answer as for a new user (an upload starts a fresh session), so no cookie locks a user out.
  SessionState* sessionOf(const RequestHead& request);
  // sessionOf(), or else a new session (nullptr with `error` when it cannot be created).
  SessionState* sessionOrCreate(const RequestHead& request, std::string* error);
  // The request's chatmrpt_session value when it is shaped like our ids, else empty.
  static std::string cookieSessionId(const RequestHead& request);

  // Sends `body` as the whole answer with `headers`. A text type (compressibleType) gets Vary:
  // Accept-Encoding, and goes gzip-encoded (Content-Encoding: gzip) when it is at least
  // kMinGzipBytes and the request accepts gzip (acceptsGzip: q-values honoured).
  void send(const ServerExchangePtr& exchange, int status, std::string_view content_type, std::string body,
            HeaderList headers);
  // Whether the answer to `request`, `bytes` long (nullopt: unknown yet) and of `content_type`,
  // goes gzip-encoded; the rule send() and sendFile() follow.
  static bool gzipFor(const RequestHead& request, std::string_view content_type, std::optional<uint64_t> bytes);
  // HTML, JSON, CSV, SVG, plain text, CSS and JavaScript: bodies gzip shrinks several times.
  static bool compressibleType(std::string_view content_type);
  // Below this, gzip's header and the CPU cost more than the bytes saved.
  static constexpr uint64_t kMinGzipBytes = 1024;
  // Speed over the last few percent: zlib's fastest level still shrinks map pages, JSON and CSV
  // several times over, at about half the CPU of level 4 (measured under the app's load: gzip
  // was a fifth of a worker's CPU at level 4).
  static constexpr int kGzipLevel = 1;

  // Sends `answer` with X-Worker and Cache-Control: no-store (through send()). When `session` is given and the
  // request's cookie does not already name it (new, rotated or adopted), sets the cookie.
  void respond(const ServerExchangePtr& exchange, const Answer& answer, const SessionState* session = nullptr);
  // The same for an exchange followed by a weak reference: nothing happens when it is gone.
  void respond(const std::weak_ptr<ServerExchange>& exchange, const Answer& answer,
               const SessionState* session = nullptr);
  void respondError(const ServerExchangePtr& exchange, ErrorKind kind, std::string message);
  // The answer to `error`: Answer::error(error.kind, error.message). A kServerIo failure is also
  // logged with its detail and counted (noteServerFailure); the detail never reaches the client.
  Answer failure(const AppError& error);
  // failure() of a kServerIo error: the client reads `message`, the log gets `detail` as well.
  Answer serverFailure(std::string message, std::string_view detail);
  // The answer to a failed data-layer status (errorKindOf its code): the user's data gets its
  // 4xx with the data layer's message and is counted as refused under `reason`; the server's
  // own I/O gets serverFailure(io_message) with the data layer's message in the log only.
  Answer dataFailure(const DataStatus& status, std::string_view reason, std::string io_message);
  // The Set-Cookie value for session `id`; an empty `id` expires the cookie.
  std::string sessionCookie(std::string_view id) const;
  // Headers every answer carries.
  HeaderList baseHeaders() const;

  // Records a refused request: a log line and a counter per reason (/system-health shows them).
  void noteRejected(std::string_view reason, std::string_view detail);
  const std::map<std::string, uint64_t, std::less<>>& rejections() const { return rejections_; }
  // Records a failure of the server's own I/O (a file it could not write, a directory it could
  // not list): a log line with the detail, and a counter (/system-health shows it).
  void noteServerFailure(std::string_view what, std::string_view detail);
  uint64_t serverFailures() const { return server_failures_; }
  // A log line on stderr, prefixed with the worker's name. Never pass a session id or cookie:
  // use shortKeyHash() of it.
  void log(std::string_view line) const;

 private:
  uv_loop_t* loop_;
  BackendOptions options_;
  SessionStore sessions_;
  std::map<std::string, uint64_t, std::less<>> rejections_;
  uint64_t server_failures_ = 0;
};

}  // namespace stickyproxy::backend
