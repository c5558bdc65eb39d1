// Streaming multipart/form-data parser (RFC 7578 over RFC 2046 section 5.1).
//
// Bodies arrive in pieces; part data is handed on as views of those pieces (zero-copy) except
// for the few bytes held back while they might be the start of a boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/http_message.h"
#include "proxy/net/bytes.h"

namespace stickyproxy::backend {

struct MultipartLimits {
  size_t max_part_head_bytes = 16 * 1024;
  size_t max_parts = 64;
};

class MultipartParser {
 public:
  // One part's head. `filename` is as the client sent it: validate before using it as a path.
  struct Part {
    std::string name;
    std::optional<std::string> filename;
    std::string content_type;  // "text/plain" when absent
    HeaderList headers;
  };

  // Receives the parts. Returning false from any callback stops the parser with an error
  // (e.g. an unexpected field, a file over its size limit); error() then holds `reject_reason`.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual bool onPartBegin(const Part& part) = 0;
    virtual bool onPartData(const Bytes& data) = 0;
    virtual bool onPartEnd() = 0;
    std::string reject_reason;
  };

  // The boundary parameter of a multipart/form-data Content-Type value, or nullopt when the
  // type is different or the boundary is missing or invalid (1-70 characters, RFC 2046).
  static std::optional<std::string> boundaryOf(std::string_view content_type);

  MultipartParser(std::string_view boundary, Handler* handler, MultipartLimits limits = {});

  // Parses the next piece of the body. Returns false on malformed input or a rejection.
  bool feed(const Bytes& data);
  // The body ended: true only when the closing boundary was seen.
  bool finish();
  const std::string& error() const { return error_; }
  bool complete() const { return state_ == State::kEpilogue; }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHead, kBody, kEpilogue, kFailed };

  bool fail(std::string message);
  // Finds the delimiter in the stream. Bytes before it go to the part (kBody) or are dropped
  // (kPreamble). Returns how much of `data` was consumed and whether the delimiter was found.
  size_t scanForDelimiter(const Bytes& data, bool* found);
  bool emit(const Bytes& data);
  bool parseHead();

  std::string delimiter_;  // "\r\n--" + boundary
  Handler* handler_;
  MultipartLimits limits_;
  State state_ = State::kPreamble;
  std::string carry_;      // held-back bytes that may begin the delimiter
  std::string head_;       // the current part's head, up to the blank line
  std::string after_delimiter_;  // "--" or transport padding + CRLF after a delimiter
  size_t parts_ = 0;
  std::string error_;
};

}  // namespace stickyproxy::backend
