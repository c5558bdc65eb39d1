#include "backend/app/exchange_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "proxy/http/gzip_encoder.h"
#include "proxy/net/json_document.h"

namespace stickyproxy::backend {

namespace {

class JsonBodyReader : public ExchangeHandler {
 public:
  JsonBodyReader(AppContext& app, std::weak_ptr<ServerExchange> exchange, std::function<void(picojson::object)> done)
      : app_(app), exchange_(std::move(exchange)), done_(std::move(done)) {}

  void onRequestBody(const Bytes& data) override {
    if (failed_) return;
    if (body_.size() + data.size > app_.options().max_json_body) {
      failed_ = true;
      if (auto exchange = exchange_.lock()) {
        app_.noteRejected("json_too_large", std::string(exchange->request().path()));
        app_.respondError(exchange, ErrorKind::kTooLarge, "Request body too large");
      }
      return;
    }
    body_.append(data.view());
  }

  void onRequestComplete() override {
    if (failed_) return;
    auto exchange = exchange_.lock();
    if (!exchange) return;
    finishBody(app_, exchange, body_, done_);
  }

  static void finishBody(AppContext& app, const ServerExchangePtr& exchange, const std::string& body,
                         const std::function<void(picojson::object)>& done) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
      done(picojson::object{});
      return;
    }
    picojson::value root;
    std::string error = parseJsonDocument(body, &root);
    if (!error.empty() || !root.is<picojson::object>()) {
      app.noteRejected("bad_json", std::string(exchange->request().path()));
      app.respondError(exchange, ErrorKind::kBadInput, "Request body must be a JSON object");
      return;
    }
    done(std::move(root.get<picojson::object>()));
  }

 private:
  AppContext& app_;
  std::weak_ptr<ServerExchange> exchange_;
  std::function<void(picojson::object)> done_;
  std::string body_;
  bool failed_ = false;
};

// Feeds a file to the client block by block, pausing while the client's write queue is full;
// through `gzip` when given, so a compressed answer never holds more than a block either.
class FileSender : public ExchangeHandler {
 public:
  FileSender(std::weak_ptr<ServerExchange> exchange, int fd, uint64_t size, std::unique_ptr<GzipEncoder> gzip)
      : exchange_(std::move(exchange)), fd_(fd), remaining_(size), gzip_(std::move(gzip)) {}
  ~FileSender() override { closeFile(); }

  void pump() {
    auto exchange = exchange_.lock();
    if (!exchange || !exchange->active()) return closeFile();
    while (remaining_ > 0 && !exchange->overHighWater()) {
      std::string block(static_cast<size_t>(std::min<uint64_t>(remaining_, kBlockBytes)), '\0');
      ssize_t n = ::read(fd_, block.data(), block.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // the file shrank under us: the length promised cannot be kept
        closeFile();
        exchange->abort();
        return;
      }
      block.resize(static_cast<size_t>(n));
      remaining_ -= static_cast<uint64_t>(n);
      if (gzip_ == nullptr) {
        exchange->sendBody(std::move(block));
        continue;
      }
      std::string packed;
      if (!gzip_->feed(block, &packed) || (remaining_ == 0 && !gzip_->finish(&packed))) {
        closeFile();
        exchange->abort();
        return;
      }
      if (!packed.empty()) exchange->sendBody(std::move(packed));
    }
    if (remaining_ == 0) {
      if (gzip_ != nullptr && !gzip_->finished()) {  // an empty file: the stream still needs its trailer
        std::string packed;
        gzip_->finish(&packed);
        exchange->sendBody(std::move(packed));
      }
      closeFile();
      exchange->finish();
    }
  }

  void onWritable() override { pump(); }
  void onAbort(const std::string&) override { closeFile(); }

 private:
  static constexpr size_t kBlockBytes = 64 * 1024;
  void closeFile() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::weak_ptr<ServerExchange> exchange_;
  int fd_;
  uint64_t remaining_;
  std::unique_ptr<GzipEncoder> gzip_;
};

// A strong validator for the file as `info` describes it: its size and modification time (a
// rewrite renames a new file into place, so both change), and which encoding is sent.
std::string fileEtag(const struct stat& info, bool gzipped) {
  char text[80];
  std::snprintf(text, sizeof text, "\"%llx-%llx%s\"", static_cast<unsigned long long>(info.st_size),
                static_cast<unsigned long long>(info.st_mtim.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(info.st_mtim.tv_nsec),
                gzipped ? "-gz" : "");
  return text;
}

// Whether an If-None-Match list names `etag` (or is "*"). Weak tags ("W/...") match their strong
// form, as RFC 9110's weak comparison for If-None-Match says.
bool etagListHolds(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

}  // namespace

void readJsonBody(AppContext& app, const ServerExchangePtr& exchange, std::function<void(picojson::object)> done) {
  if (exchange->requestComplete()) {
    JsonBodyReader::finishBody(app, exchange, std::string(), done);
    return;
  }
  exchange->setHandler(std::make_shared<JsonBodyReader>(app, exchange, std::move(done)));
}

void sendFile(AppContext& app, const ServerExchangePtr& exchange, const std::string& path,
              std::string_view content_type, std::string_view download_name, std::string not_found_message) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat info {};
  if (fd < 0 || ::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    if (fd >= 0) ::close(fd);
    app.respondError(exchange, ErrorKind::kNotFound, std::move(not_found_message));
    return;
  }
  ResponseHead head;
  head.status = 200;
  head.headers = app.baseHeaders();
  // A session's files are rewritten under the same names (a map per analysis): the browser may
  // keep them but asks each time, and gets 304 while the file is the one it has.
  head.headers.set("Cache-Control", "private, no-cache");
  head.headers.add("X-Content-Type-Options", "nosniff");
  const auto size = static_cast<uint64_t>(info.st_size);
  const bool gzipped = AppContext::gzipFor(exchange->request(), content_type, size);
  if (AppContext::compressibleType(content_type)) head.headers.add("Vary", "Accept-Encoding");
  const std::string etag = fileEtag(info, gzipped);
  head.headers.add("ETag", etag);
  if (const std::string* known = exchange->request().headers.find("If-None-Match");
      known != nullptr && etagListHolds(*known, etag)) {
    ::close(fd);
    head.status = 304;
    exchange->sendHead(std::move(head), std::nullopt);
    exchange->finish();
    return;
  }
  head.headers.add("Content-Type", std::string(content_type));
  if (!download_name.empty()) {
    head.headers.add("Content-Disposition", "attachment; filename=\"" + std::string(download_name) + "\"");
  }
  std::unique_ptr<GzipEncoder> gzip;
  if (gzipped) {
    gzip = std::make_unique<GzipEncoder>(AppContext::kGzipLevel);
    head.headers.add("Content-Encoding", "gzip");
  }
  const bool chunked = gzip != nullptr;  // the compressed length is known only at the end
  auto sender = std::make_shared<FileSender>(exchange, fd, size, std::move(gzip));
  exchange->setHandler(sender);
  exchange->sendHead(std::move(head), chunked ? std::nullopt : std::optional<uint64_t>(size));
  sender->pump();
}

std::string stringMember(const picojson::object& object, std::string_view key, std::string fallback) {
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->second.is<std::string>()) return fallback;
  return it->second.get<std::string>();
}

}  // namespace stickyproxy::backend
