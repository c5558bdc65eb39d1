#include "backend/app/multipart_receiver.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

namespace {

constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxFields = 16;

class MultipartReceiver : public ExchangeHandler, public MultipartParser::Handler {
 public:
  MultipartReceiver(const std::string& boundary, FileRouter route, std::function<void(ReceivedForm)> done)
      : parser_(boundary, this), route_(std::move(route)), done_(std::move(done)) {}
  ~MultipartReceiver() override { discardCurrent(); }

  // ExchangeHandler
  void onRequestBody(const Bytes& data) override {
    if (finished_) return;
    if (!parser_.feed(data)) fail(reject_status_, parser_.error().empty() ? "Malformed upload" : parser_.error());
  }
  void onRequestComplete() override {
    if (finished_) return;
    if (!parser_.finish()) return fail(400, "The upload ended before its last part (malformed multipart body)");
    form_.ok = true;
    finish();
  }
  void onAbort(const std::string&) override {
    if (finished_) return;
    form_.aborted = true;
    fail(400, "The client went away during the upload");
  }

  // MultipartParser::Handler
  bool onPartBegin(const MultipartParser::Part& part) override {
    if (!part.filename) {
      if (form_.fields.size() >= kMaxFields) return reject(400, "Too many form fields");
      field_name_ = part.name;
      field_value_.clear();
      in_field_ = true;
      return true;
    }
    in_field_ = false;
    if (form_.files.count(part.name) != 0) return reject(400, "Field '" + part.name + "' was sent twice");
    std::string reason;
    int status = 400;
    FileTarget target = route_(part, form_.fields, &reason, &status);
    if (target.path.empty()) return reject(status, reason);
    temp_path_ = target.path + ".tmp";
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return reject(500, "Could not store the upload: " + errnoText(errno));
    max_bytes_ = target.max_bytes;
    current_ = ReceivedFile{target.path, *part.filename, 0};
    current_name_ = part.name;
    return true;
  }

  bool onPartData(const Bytes& data) override {
    if (in_field_) {
      if (field_value_.size() + data.size > kMaxFieldBytes) return reject(400, "Form field '" + field_name_ + "' is too long");
      field_value_.append(data.view());
      return true;
    }
    current_.bytes += data.size;
    if (current_.bytes > max_bytes_) {
      return reject(413, "File too large: '" + current_name_ + "' is over " + std::to_string(max_bytes_ >> 20) + " MB");
    }
    if (!writeAllTo(fd_, data.view())) return reject(500, "Could not store the upload: " + errnoText(errno));
    return true;
  }

  bool onPartEnd() override {
    if (in_field_) {
      form_.fields[field_name_] = field_value_;
      in_field_ = false;
      return true;
    }
    int fd = fd_;
    fd_ = -1;
    bool stored = ::close(fd) == 0 && std::rename(temp_path_.c_str(), current_.path.c_str()) == 0;
    if (!stored) {
      ::unlink(temp_path_.c_str());
      return reject(500, "Could not store the upload: " + errnoText(errno));
    }
    form_.files[current_name_] = current_;
    return true;
  }

 private:
  bool reject(int status, std::string reason) {
    reject_status_ = status;
    reject_reason = std::move(reason);
    return false;
  }

  void discardCurrent() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
  }

  void fail(int status, std::string message) {
    discardCurrent();
    for (const auto& [name, file] : form_.files) ::unlink(file.path.c_str());
    form_.files.clear();
    form_.ok = false;
    form_.http_status = status;
    form_.message = std::move(message);
    finish();
  }

  void finish() {
    finished_ = true;
    auto done = std::move(done_);
    done(std::move(form_));
  }

  MultipartParser parser_;
  FileRouter route_;
  std::function<void(ReceivedForm)> done_;
  ReceivedForm form_;
  bool finished_ = false;
  int reject_status_ = 400;
  bool in_field_ = false;
  std::string field_name_;
  std::string field_value_;
  int fd_ = -1;
  std::string temp_path_;
  uint64_t max_bytes_ = 0;
  ReceivedFile current_;
  std::string current_name_;
};

}  // namespace

void receiveMultipart(const ServerExchangePtr& exchange, const std::string& boundary, FileRouter route,
                      std::function<void(ReceivedForm)> done) {
  auto receiver = std::make_shared<MultipartReceiver>(boundary, std::move(route), std::move(done));
  exchange->setHandler(receiver);
  if (exchange->requestComplete()) receiver->onRequestComplete();
}

}  // namespace stickyproxy::backend
