// A user of the bundled analysis app (stickyproxy-backend), for integration tests: requests
// with the user's cookies, replies parsed as JSON, the app's upload and chat protocols.
//
// Catch2-free like the harness, so that several users can run on threads at once: nothing here
// asserts; callers check the replies. Transport failures throw HarnessError.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <picojson.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/multipart_form.h"

namespace stickyproxy::integration {

// The app's own session cookie.
inline const std::string kAppCookieName = "chatmrpt_session";

// One answer of the app: the HTTP response and, when the body is JSON, its value.
struct AppReply {
  std::string request;  // "POST /run_analysis", for messages
  Response http;
  std::optional<picojson::value> json;

  int status() const { return http.status; }
  std::string worker() const { return http.headerOr("X-Worker"); }
  // The value at a dotted path of object members ("data_summary.join.matched_wards"), or
  // nullptr when the body is not JSON or a member is missing.
  const picojson::value* at(std::string_view path) const;
  // The string at `path`; "" when absent or not a string.
  std::string text(std::string_view path) const;
  // The number at `path`; nullopt when absent or not a number.
  std::optional<double> number(std::string_view path) const;
  // True only when the value at `path` is JSON true.
  bool flag(std::string_view path) const;
  bool isNull(std::string_view path) const;
  // The strings of the array at `path` (other items skipped); empty when absent.
  std::vector<std::string> texts(std::string_view path) const;
  // An error answer as the app promises them: 4xx or 5xx, JSON, "status": "error" and a
  // non-empty "message".
  bool isJsonError() const;
  // "POST /run_analysis -> 400 (w2) {...}", the body cut short, for failure messages.
  std::string describe() const;
};

// The events of one streamed chat answer.
struct ChatStreamReply {
  std::string request;
  Response head;
  std::vector<picojson::object> events;  // each event's JSON, in arrival order
  std::vector<std::string> malformed;    // event data that was not a JSON object

  // The "content" of every event, joined.
  std::string text() const;
  // The last event, or nullptr when there was none.
  const picojson::object* last() const;
  // The last event's string member `name`, or "".
  std::string lastText(const std::string& name) const;
  bool endedDone() const;
};

// Builds a JSON object's text from string members, e.g. jsonBody({{"type", "box_plot"}}).
std::string jsonBody(const std::vector<std::pair<std::string, std::string>>& members);

// A browser-like user: a cookie jar, and one or more connections to send through (the proxy,
// or several workers' sockets to show what goes wrong without stickiness).
class AppClient {
 public:
  // The jar starts with the cookies `connection` (or connections[0]) already holds, e.g. a
  // routing cookie the test chose.
  explicit AppClient(HttpClient connection);
  // Requests go through connections[0] until use() picks another; the jar goes with them.
  explicit AppClient(std::vector<HttpClient> connections);

  // The connection the next requests use.
  void use(size_t connection);
  size_t connectionCount() const { return connections_.size(); }

  AppReply get(std::string_view path);
  AppReply postJson(std::string_view path, std::string_view json);
  AppReply postForm(std::string_view path, const MultipartForm& form);
  // A request as given (for malformed bodies and odd content types).
  AppReply send(std::string_view method, std::string_view path, const Headers& headers, std::string_view body);

  // POST /upload_both_files with csv_file and shapefile parts; an empty `zip_name` sends the CSV
  // alone.
  AppReply uploadBothFiles(std::string_view csv_name, std::string_view csv, std::string_view zip_name,
                           std::string_view zip);
  // POST /upload/chunk for one piece of a file ("csv" or "shapefile").
  AppReply uploadChunk(std::string_view upload_id, std::string_view file_type, size_t index, size_t total,
                       std::string_view bytes);
  // Sends `bytes` as ceil(size / chunk_bytes) chunks of `file_type`, each through the connection
  // `route(index)` picks (nullptr: the current one). Returns every chunk's reply.
  std::vector<AppReply> uploadChunks(std::string_view upload_id, std::string_view file_type, std::string_view bytes,
                                     size_t chunk_bytes, const std::function<size_t(size_t)>& route = nullptr);
  // POST /upload/finalize for an upload of `csv_chunks` and `shp_chunks` chunks.
  AppReply finalizeUpload(std::string_view upload_id, std::string_view csv_name, std::string_view zip_name,
                          size_t csv_chunks, size_t shp_chunks);

  // POST /send_message_streaming, read to its end.
  ChatStreamReply chat(std::string_view message);

  // The app's session id as the jar holds it; "" when none.
  std::string appSession() const;
  const std::map<std::string, std::string>& cookies() const { return jar_; }
  void setCookie(const std::string& name, std::string value) { jar_[name] = std::move(value); }
  // X-Worker of every response so far, in order ("" for a response without one).
  const std::vector<std::string>& workersSeen() const { return workers_seen_; }

 private:
  HttpClient& current();
  AppReply finish(std::string request, Response response);

  std::vector<HttpClient> connections_;
  size_t current_ = 0;
  std::map<std::string, std::string> jar_;
  std::vector<std::string> workers_seen_;
};

// How many chunks `bytes` makes at `chunk_bytes` each (at least one).
size_t chunkCount(size_t bytes, size_t chunk_bytes);

}  // namespace stickyproxy::integration
