// Incremental HTTP/1.x parser (llhttp underneath) that produces RequestHead / ResponseHead
// values, zero-copy body views and enforces size limits.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string>

#include "proxy/http/head_classifier.h"
#include "proxy/http/http_message.h"
#include "proxy/net/bytes.h"

namespace stickyproxy {

enum class ParseError {
  kNone,
  kMalformed,           // 400
  kRequestLineTooLong,  // 414
  kHeadTooLarge,        // 431: too many bytes or too many fields in the head
  kBodyTooLarge,        // 413
  kNotImplemented,      // 501: CONNECT, unknown transfer coding
};

// The status code a server answers a request parse error with.
int statusForParseError(ParseError error);

struct ParserLimits {
  uint32_t max_request_line = 8 * 1024;
  uint32_t max_head_bytes = 32 * 1024;
  uint32_t max_headers = 100;
  uint64_t max_body = 0;  // 0 = unlimited
  // How request heads the classifier flags are treated (responses: Severe is always refused).
  DesyncMode desync_mode = DesyncMode::kDefensive;
};

class HttpParser {
 public:
  enum class Kind { kRequest, kResponse };

  // Receives what the parser finds. Callbacks must not destroy the parser.
  class Handler {
   public:
    virtual void onRequestHead(RequestHead&& /*head*/) {}
    // Return true when the response can have no body although its head says otherwise
    // (the answer to a HEAD request).
    virtual bool onResponseHead(ResponseHead&& /*head*/) { return false; }
    // A piece of the (de-chunked) body; `data` shares the memory fed to feed().
    virtual void onBody(const Bytes& data) = 0;
    virtual void onMessageComplete() = 0;

    virtual ~Handler() = default;
  };

  HttpParser(Kind kind, Handler* handler, ParserLimits limits);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Parses as much of `data` as possible and returns the number of bytes consumed. Parsing
  // stops right after each complete message: feed the rest again once the message has been
  // dealt with. On a parse error, error() is set and further input is refused.
  // A head is held back (copied) until it is complete, then classified (head_classifier.h)
  // and only then parsed: Severe heads are refused, Ambiguous ones parsed in normalised form.
  size_t feed(const Bytes& data);
  // The peer closed: completes a body that runs until close, or flags a truncated message.
  void finish();

  ParseError error() const { return error_; }
  // A short text for logs, e.g. "Invalid header value char".
  const std::string& errorReason() const { return error_reason_; }
  // The classification of the last head.
  const HeadVerdict& verdict() const { return verdict_; }
  // When error() comes from the classifier refusing a head: its finding (else compliant).
  const HeadVerdict& refusal() const { return refusal_; }
  // True between the first byte of a message and its completion.
  bool inMessage() const { return in_message_ || !held_.empty(); }
  bool headComplete() const { return head_complete_; }
  void setLimits(ParserLimits limits) { limits_ = limits; }

 private:
  static int onMessageBegin(llhttp_t* parser);
  static int onUrl(llhttp_t* parser, const char* at, size_t length);
  static int onStatus(llhttp_t* parser, const char* at, size_t length);
  static int onHeaderField(llhttp_t* parser, const char* at, size_t length);
  static int onHeaderValue(llhttp_t* parser, const char* at, size_t length);
  static int onHeadersComplete(llhttp_t* parser);
  static int onBodyData(llhttp_t* parser, const char* at, size_t length);
  static int onMessageDone(llhttp_t* parser);
  int fail(ParseError error, std::string reason);
  // Feeds `data` while no head has been parsed for the current message.
  size_t feedHead(const Bytes& data);
  // Classifies the complete `head` and hands it (or its normalised form) to llhttp; returns
  // false when the head was refused or llhttp stopped inside it.
  bool parseHead(std::string_view head);
  size_t execute(const Bytes& data);
  // Resumes after a pause or records an llhttp error; false on an error.
  bool afterExecute(llhttp_errno_t status);
  bool countHeadBytes(size_t length);
  BodyFraming framing() const;

  llhttp_t parser_;
  llhttp_settings_t settings_;
  Kind kind_;
  Handler* handler_;
  ParserLimits limits_;
  const Bytes* feeding_ = nullptr;  // the buffer being parsed, for zero-copy body views

  // Head bytes held back until the blank line arrives; empty when the head came in one piece.
  std::string held_;
  bool head_parsed_ = false;  // llhttp has the current message's head
  HeadVerdict verdict_;
  HeadVerdict refusal_;
  std::string normalised_;

  // The head being assembled.
  std::string url_;
  std::string reason_;
  HeaderList headers_;
  bool last_was_value_ = false;
  size_t head_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  bool in_message_ = false;
  bool head_complete_ = false;

  ParseError error_ = ParseError::kNone;
  std::string error_reason_;
};

}  // namespace stickyproxy
