#include "tests/integration/app_client.h"

#include <algorithm>


namespace stickyproxy::integration {

namespace {

constexpr size_t kDescribeBodyBytes = 600;

std::optional<picojson::value> parseJson(const std::string& text) {
  picojson::value value;
  std::string error;
  try {
    error = picojson::parse(value, text);
  } catch (const std::exception& failure) {  // picojson throws on numbers a double cannot hold
    error = failure.what();
  }
  if (!error.empty()) return std::nullopt;
  return value;
}

const picojson::value* member(const picojson::value& value, std::string_view path) {
  const picojson::value* node = &value;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string name(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (!node->is<picojson::object>()) return nullptr;
    const picojson::object& object = node->get<picojson::object>();
    auto found = object.find(name);
    if (found == object.end()) return nullptr;
    node = &found->second;
  }
  return node;
}

}  // namespace

const picojson::value* AppReply::at(std::string_view path) const { return json ? member(*json, path) : nullptr; }

std::string AppReply::text(std::string_view path) const {
  const picojson::value* value = at(path);
  return value != nullptr && value->is<std::string>() ? value->get<std::string>() : std::string();
}

std::optional<double> AppReply::number(std::string_view path) const {
  const picojson::value* value = at(path);
  if (value == nullptr || !value->is<double>()) return std::nullopt;
  return value->get<double>();
}

bool AppReply::flag(std::string_view path) const {
  const picojson::value* value = at(path);
  return value != nullptr && value->is<bool>() && value->get<bool>();
}

bool AppReply::isNull(std::string_view path) const {
  const picojson::value* value = at(path);
  return value != nullptr && value->is<picojson::null>();
}

std::vector<std::string> AppReply::texts(std::string_view path) const {
  std::vector<std::string> items;
  const picojson::value* value = at(path);
  if (value == nullptr || !value->is<picojson::array>()) return items;
  for (const picojson::value& item : value->get<picojson::array>()) {
    if (item.is<std::string>()) items.push_back(item.get<std::string>());
  }
  return items;
}

bool AppReply::isJsonError() const {
  return status() >= 400 && json && json->is<picojson::object>() && text("status") == "error" && !text("message").empty();
}

std::string AppReply::describe() const {
  std::string body = http.body.size() > kDescribeBodyBytes ? http.body.substr(0, kDescribeBodyBytes) + "..." : http.body;
  return request + " -> " + std::to_string(status()) + " (" + worker() + ") " + body;
}

std::string ChatStreamReply::text() const {
  std::string joined;
  for (const picojson::object& event : events) {
    auto content = event.find("content");
    if (content != event.end() && content->second.is<std::string>()) joined += content->second.get<std::string>();
  }
  return joined;
}

const picojson::object* ChatStreamReply::last() const { return events.empty() ? nullptr : &events.back(); }

std::string ChatStreamReply::lastText(const std::string& name) const {
  const picojson::object* event = last();
  if (event == nullptr) return {};
  auto found = event->find(name);
  return found != event->end() && found->second.is<std::string>() ? found->second.get<std::string>() : std::string();
}

bool ChatStreamReply::endedDone() const {
  const picojson::object* event = last();
  if (event == nullptr) return false;
  auto done = event->find("done");
  return done != event->end() && done->second.is<bool>() && done->second.get<bool>();
}

std::string jsonBody(const std::vector<std::pair<std::string, std::string>>& members) {
  picojson::object object;
  for (const auto& [name, value] : members) object[name] = picojson::value(value);
  return picojson::value(object).serialize();
}

size_t chunkCount(size_t bytes, size_t chunk_bytes) { return bytes == 0 ? 1 : (bytes + chunk_bytes - 1) / chunk_bytes; }

AppClient::AppClient(HttpClient connection) {
  jar_ = connection.cookies();
  connections_.push_back(std::move(connection));
}

AppClient::AppClient(std::vector<HttpClient> connections) : connections_(std::move(connections)) {
  if (connections_.empty()) throw HarnessError("AppClient needs a connection");
  jar_ = connections_.front().cookies();
}

void AppClient::use(size_t connection) {
  if (connection >= connections_.size()) throw HarnessError("AppClient::use: no connection " + std::to_string(connection));
  current_ = connection;
}

HttpClient& AppClient::current() {
  HttpClient& client = connections_[current_];
  client.useCookieJar(true);
  client.setCookies(jar_);
  return client;
}

AppReply AppClient::finish(std::string request, Response response) {
  jar_ = connections_[current_].cookies();
  workers_seen_.push_back(response.headerOr("X-Worker"));
  AppReply reply;
  reply.request = std::move(request);
  if (response.headerOr("Content-Type").rfind("application/json", 0) == 0) reply.json = parseJson(response.body);
  reply.http = std::move(response);
  return reply;
}

AppReply AppClient::send(std::string_view method, std::string_view path, const Headers& headers,
                         std::string_view body) {
  Response response = current().request(method, path, headers, body);
  return finish(std::string(method) + " " + std::string(path), std::move(response));
}

AppReply AppClient::get(std::string_view path) { return send("GET", path, {}, {}); }

AppReply AppClient::postJson(std::string_view path, std::string_view json) {
  return send("POST", path, {{"Content-Type", "application/json"}}, json);
}

AppReply AppClient::postForm(std::string_view path, const MultipartForm& form) {
  return send("POST", path, {{"Content-Type", form.contentType()}}, form.body());
}

AppReply AppClient::uploadBothFiles(std::string_view csv_name, std::string_view csv, std::string_view zip_name,
                                    std::string_view zip) {
  MultipartForm form;
  form.file("csv_file", csv_name, csv, "text/csv");
  if (!zip_name.empty()) form.file("shapefile", zip_name, zip, "application/zip");
  return postForm("/upload_both_files", form);
}

AppReply AppClient::uploadChunk(std::string_view upload_id, std::string_view file_type, size_t index, size_t total,
                                std::string_view bytes) {
  MultipartForm form;
  form.field("upload_id", upload_id)
      .field("file_type", file_type)
      .field("chunk_index", std::to_string(index))
      .field("total_chunks", std::to_string(total))
      .file("chunk", "blob", bytes);
  return postForm("/upload/chunk", form);
}

std::vector<AppReply> AppClient::uploadChunks(std::string_view upload_id, std::string_view file_type,
                                              std::string_view bytes, size_t chunk_bytes,
                                              const std::function<size_t(size_t)>& route) {
  const size_t total = chunkCount(bytes.size(), chunk_bytes);
  std::vector<AppReply> replies;
  for (size_t index = 0; index < total; ++index) {
    if (route) use(route(index));
    const size_t offset = index * chunk_bytes;
    replies.push_back(uploadChunk(upload_id, file_type, index, total,
                                  bytes.substr(std::min(offset, bytes.size()), chunk_bytes)));
  }
  return replies;
}

AppReply AppClient::finalizeUpload(std::string_view upload_id, std::string_view csv_name, std::string_view zip_name,
                                   size_t csv_chunks, size_t shp_chunks) {
  picojson::object body;
  body["upload_id"] = picojson::value(std::string(upload_id));
  body["csv_filename"] = picojson::value(std::string(csv_name));
  body["shapefile_filename"] = picojson::value(std::string(zip_name));
  body["csv_total_chunks"] = picojson::value(static_cast<double>(csv_chunks));
  body["shp_total_chunks"] = picojson::value(static_cast<double>(shp_chunks));
  return postJson("/upload/finalize", picojson::value(body).serialize());
}

ChatStreamReply AppClient::chat(std::string_view message) {
  ChatStreamReply reply;
  reply.request = "POST /send_message_streaming " + jsonBody({{"message", std::string(message)}});
  HttpClient& client = current();
  reply.head = client.startStream("POST", "/send_message_streaming", {{"Content-Type", "application/json"}},
                                  jsonBody({{"message", std::string(message)}}));
  while (std::optional<SseEvent> event = client.nextEvent()) {
    std::optional<picojson::value> value = parseJson(event->data);
    if (value && value->is<picojson::object>()) {
      reply.events.push_back(value->get<picojson::object>());
    } else {
      reply.malformed.push_back(event->raw);
    }
  }
  jar_ = client.cookies();
  workers_seen_.push_back(reply.head.headerOr("X-Worker"));
  return reply;
}

std::string AppClient::appSession() const {
  auto found = jar_.find(kAppCookieName);
  return found == jar_.end() ? std::string() : found->second;
}

}  // namespace stickyproxy::integration
