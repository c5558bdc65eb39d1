#include "backend/app/multipart_receiver.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

namespace {

constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxFields = 16;
constexpr const char* kStoreFailed = "Could not store the upload";

class MultipartReceiver : public ExchangeHandler, public MultipartParser::Handler {
 public:
  MultipartReceiver(const std::string& boundary, FileRouter route, std::function<void(ReceivedForm)> done)
      : parser_(boundary, this), route_(std::move(route)), done_(std::move(done)) {}
  ~MultipartReceiver() override { discardCurrent(); }

  // ExchangeHandler
  void onRequestBody(const Bytes& data) override {
    if (finished_) return;
    if (!parser_.feed(data)) {
      // A part this receiver refused carries its own kind; anything else is a malformed body.
      if (reject_.message.empty()) {
        reject_ = {ErrorKind::kBadInput, parser_.error().empty() ? "Malformed upload" : parser_.error(), {}};
      }
      fail(std::move(reject_));
    }
  }
  void onRequestComplete() override {
    if (finished_) return;
    if (!parser_.finish()) {
      return fail({ErrorKind::kBadInput, "The upload ended before its last part (malformed multipart body)", {}});
    }
    form_.ok = true;
    finish();
  }
  void onAbort(const std::string&) override {
    if (finished_) return;
    form_.aborted = true;
    fail({ErrorKind::kBadInput, "The client went away during the upload", {}});
  }

  // MultipartParser::Handler
  bool onPartBegin(const MultipartParser::Part& part) override {
    if (!part.filename) {
      if (form_.fields.size() >= kMaxFields) return reject(ErrorKind::kBadInput, "Too many form fields");
      field_name_ = part.name;
      field_value_.clear();
      in_field_ = true;
      return true;
    }
    in_field_ = false;
    if (form_.files.count(part.name) != 0) {
      return reject(ErrorKind::kBadInput, "Field '" + part.name + "' was sent twice");
    }
    AppError refusal{ErrorKind::kBadInput, {}, {}};
    FileTarget target = route_(part, form_.fields, &refusal);
    if (target.path.empty()) return reject(refusal.kind, std::move(refusal.message), std::move(refusal.detail));
    temp_path_ = target.path + ".tmp";
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      const int err = errno;
      return reject(ErrorKind::kServerIo, kStoreFailed, "cannot create " + temp_path_ + ": " + errnoText(err));
    }
    max_bytes_ = target.max_bytes;
    current_ = ReceivedFile{target.path, *part.filename, 0};
    current_name_ = part.name;
    return true;
  }

  bool onPartData(const Bytes& data) override {
    if (in_field_) {
      if (field_value_.size() + data.size > kMaxFieldBytes) {
        return reject(ErrorKind::kBadInput, "Form field '" + field_name_ + "' is too long");
      }
      field_value_.append(data.view());
      return true;
    }
    current_.bytes += data.size;
    if (current_.bytes > max_bytes_) {
      return reject(ErrorKind::kTooLarge,
                    "File too large: '" + current_name_ + "' is over " + std::to_string(max_bytes_ >> 20) + " MB");
    }
    if (!writeAllTo(fd_, data.view())) {
      const int err = errno;
      return reject(ErrorKind::kServerIo, kStoreFailed, "cannot write " + temp_path_ + ": " + errnoText(err));
    }
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
      const int err = errno;
      ::unlink(temp_path_.c_str());
      return reject(ErrorKind::kServerIo, kStoreFailed, "cannot store " + current_.path + ": " + errnoText(err));
    }
    form_.files[current_name_] = current_;
    return true;
  }

 private:
  // Stops the parser: the next fail() answers `message`; `detail` goes to the log only.
  bool reject(ErrorKind kind, std::string message, std::string detail = {}) {
    reject_reason = message;
    reject_ = AppError{kind, std::move(message), std::move(detail)};
    return false;
  }

  void discardCurrent() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
  }

  void fail(AppError error) {
    discardCurrent();
    for (const auto& [name, file] : form_.files) ::unlink(file.path.c_str());
    form_.files.clear();
    form_.ok = false;
    form_.error = std::move(error);
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
  AppError reject_;  // set by reject(), read when the parser stops
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
