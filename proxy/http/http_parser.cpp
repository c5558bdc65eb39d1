#include "proxy/http/http_parser.h"

#include <algorithm>

namespace stickyproxy {

int statusForParseError(ParseError error) {
  switch (error) {
    case ParseError::kNone: return 200;
    case ParseError::kMalformed: return 400;
    case ParseError::kRequestLineTooLong: return 414;
    case ParseError::kHeadTooLarge: return 431;
    case ParseError::kBodyTooLarge: return 413;
    case ParseError::kNotImplemented: return 501;
  }
  return 400;
}

namespace {
HttpParser* owner(llhttp_t* parser) { return static_cast<HttpParser*>(parser->data); }
// Room for the fields of a typical head, made once per message instead of by doubling.
constexpr size_t kExpectedFields = 16;
}  // namespace

HttpParser::HttpParser(Kind kind, Handler* handler, ParserLimits limits)
    : kind_(kind), handler_(handler), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &HttpParser::onMessageBegin;
  settings_.on_url = &HttpParser::onUrl;
  settings_.on_status = &HttpParser::onStatus;
  settings_.on_header_field = &HttpParser::onHeaderField;
  settings_.on_header_value = &HttpParser::onHeaderValue;
  settings_.on_headers_complete = &HttpParser::onHeadersComplete;
  settings_.on_body = &HttpParser::onBodyData;
  settings_.on_message_complete = &HttpParser::onMessageDone;
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

size_t HttpParser::feed(const Bytes& data) {
  if (error_ != ParseError::kNone || data.empty()) return 0;
  return head_parsed_ ? execute(data) : feedHead(data);
}

size_t HttpParser::feedHead(const Bytes& data) {
  std::string_view input(data.data, data.size);
  size_t skipped = 0;
  if (held_.empty()) {
    // RFC 9112 section 2.2: empty lines before a message are ignored.
    while (input.size() - skipped >= 2 && input[skipped] == '\r' && input[skipped + 1] == '\n') skipped += 2;
    if (skipped == input.size()) return skipped;
    input.remove_prefix(skipped);
  }
  // `view` is the head so far: this read alone, or appended to what earlier reads left.
  const bool holding = !held_.empty();
  size_t held_before = held_.size();
  std::string_view view = input;
  if (holding) {
    held_.append(input);
    size_t blank = 0;  // a CR that ended the last read and its LF: another ignored empty line
    while (held_.size() - blank >= 2 && held_[blank] == '\r' && held_[blank + 1] == '\n') blank += 2;
    held_.erase(0, blank);
    size_t from_held = std::min(held_before, blank);
    skipped = blank - from_held;
    held_before -= from_held;
    view = held_;
  }
  HeadIssue issue = HeadIssue::kNone;
  size_t end = findHeadEnd(view, &issue);
  if (issue != HeadIssue::kNone) {
    verdict_ = HeadVerdict{headRule(issue).head_class, issue, false};
    if (kind_ == Kind::kRequest && limits_.desync_mode == DesyncMode::kMonitor) {
      // Counted only: llhttp judges the raw bytes, which own their copy from here on.
      Bytes raw = Bytes::copyOf(view);
      held_.clear();
      head_parsed_ = true;
      size_t parsed = execute(raw);
      return skipped + (parsed > held_before ? parsed - held_before : 0);
    }
    held_.clear();
    refusal_ = verdict_;
    fail(ParseError::kMalformed, "desync severe: " + std::string(verdict_.label()));
    return 0;
  }
  // Limits first, complete or not: a head that is too large is 414/431 whatever else it is.
  size_t line_end = view.find('\n');
  size_t line_length = line_end == std::string_view::npos ? view.size() : line_end;
  if (kind_ == Kind::kRequest && line_length > limits_.max_request_line) {
    held_.clear();
    fail(ParseError::kRequestLineTooLong, "request line too long");
    return 0;
  }
  if ((end == 0 ? view.size() : end) > limits_.max_head_bytes) {
    held_.clear();
    fail(ParseError::kHeadTooLarge, kind_ == Kind::kRequest ? "request head too large" : "response head too large");
    return 0;
  }
  if (end == 0) {
    if (!holding) held_.assign(view);
    return data.size;
  }
  size_t consumed = skipped + end - held_before;
  bool parsed = parseHead(view.substr(0, end));
  held_.clear();
  if (!parsed || !head_parsed_ || consumed == data.size) return consumed;
  return consumed + execute(data.suffix(consumed));
}

bool HttpParser::parseHead(std::string_view head) {
  normalised_.clear();
  bool request = kind_ == Kind::kRequest;
  verdict_ = request ? classifyRequestHead(head, &normalised_) : classifyResponseHead(head, &normalised_);
  bool enforce = !request || limits_.desync_mode != DesyncMode::kMonitor;
  bool refuse = verdict_.head_class == HeadClass::kSevere ||
                (request && limits_.desync_mode == DesyncMode::kStrictest && verdict_.head_class == HeadClass::kAmbiguous);
  if (enforce && refuse) {
    const HeadRule& rule = headRule(verdict_.issue);
    refusal_ = verdict_;
    fail(rule.status == 501 ? ParseError::kNotImplemented : ParseError::kMalformed,
         "desync " + std::string(headClassName(rule.head_class)) + ": " + std::string(rule.label));
    return false;
  }
  std::string_view bytes = enforce && verdict_.rewritten ? std::string_view(normalised_) : head;
  head_parsed_ = true;
  feeding_ = nullptr;  // a head has no body bytes
  llhttp_errno_t status = llhttp_execute(&parser_, bytes.data(), bytes.size());
  return afterExecute(status) && error_ == ParseError::kNone;
}

size_t HttpParser::execute(const Bytes& data) {
  feeding_ = &data;
  llhttp_errno_t status = llhttp_execute(&parser_, data.data, data.size);
  feeding_ = nullptr;
  if (status == HPE_OK) return data.size;
  const char* position = llhttp_get_error_pos(&parser_);
  afterExecute(status);
  // On a pause (in on_message_complete) the position is the first byte after the message.
  return position != nullptr && position >= data.data ? static_cast<size_t>(position - data.data) : 0;
}

bool HttpParser::afterExecute(llhttp_errno_t status) {
  if (status == HPE_OK) return true;
  if (status == HPE_PAUSED) {
    llhttp_resume(&parser_);
    return true;
  }
  if (status == HPE_PAUSED_UPGRADE) {
    llhttp_resume_after_upgrade(&parser_);
    return true;
  }
  if (error_ == ParseError::kNone) {
    error_ = status == HPE_INVALID_TRANSFER_ENCODING ? ParseError::kNotImplemented : ParseError::kMalformed;
    error_reason_ = llhttp_get_error_reason(&parser_) != nullptr ? llhttp_get_error_reason(&parser_) : "parse error";
  }
  return false;
}

void HttpParser::finish() {
  if (error_ != ParseError::kNone) return;
  if (!held_.empty()) {
    held_.clear();
    error_ = ParseError::kMalformed;
    error_reason_ = "connection closed inside a message head";
    return;
  }
  llhttp_errno_t status = llhttp_finish(&parser_);
  if (status != HPE_OK && status != HPE_PAUSED && error_ == ParseError::kNone) {
    error_ = ParseError::kMalformed;
    error_reason_ = "connection closed inside a message";
  }
}

int HttpParser::fail(ParseError error, std::string reason) {
  error_ = error;
  error_reason_ = std::move(reason);
  return -1;
}

bool HttpParser::countHeadBytes(size_t length) {
  head_bytes_ += length;
  return head_bytes_ <= limits_.max_head_bytes;
}

int HttpParser::onMessageBegin(llhttp_t* parser) {
  HttpParser* self = owner(parser);
  self->url_.clear();
  self->reason_.clear();
  self->headers_.clear();
  self->headers_.reserveRecycled(kExpectedFields);
  self->last_was_value_ = false;
  self->head_bytes_ = 0;
  self->body_bytes_ = 0;
  self->in_message_ = true;
  self->head_complete_ = false;
  return 0;
}

int HttpParser::onUrl(llhttp_t* parser, const char* at, size_t length) {
  HttpParser* self = owner(parser);
  if (self->url_.size() + length > self->limits_.max_request_line) {
    return self->fail(ParseError::kRequestLineTooLong, "request line too long");
  }
  if (!self->countHeadBytes(length)) return self->fail(ParseError::kHeadTooLarge, "request head too large");
  HeaderList::appendRecycled(self->url_, std::string_view(at, length));
  return 0;
}

int HttpParser::onStatus(llhttp_t* parser, const char* at, size_t length) {
  HttpParser* self = owner(parser);
  if (!self->countHeadBytes(length)) return self->fail(ParseError::kHeadTooLarge, "response head too large");
  self->reason_.append(at, length);
  return 0;
}

int HttpParser::onHeaderField(llhttp_t* parser, const char* at, size_t length) {
  HttpParser* self = owner(parser);
  if (!self->countHeadBytes(length)) return self->fail(ParseError::kHeadTooLarge, "head too large");
  auto& fields = self->headers_.fields();
  if (fields.empty() || self->last_was_value_) {
    if (fields.size() >= self->limits_.max_headers) {
      return self->fail(ParseError::kHeadTooLarge, "too many header fields");
    }
    self->headers_.addRecycled(std::string_view(at, length));
  } else {
    HeaderList::appendRecycled(fields.back().name, std::string_view(at, length));
  }
  self->last_was_value_ = false;
  return 0;
}

int HttpParser::onHeaderValue(llhttp_t* parser, const char* at, size_t length) {
  HttpParser* self = owner(parser);
  if (!self->countHeadBytes(length)) return self->fail(ParseError::kHeadTooLarge, "head too large");
  auto& fields = self->headers_.fields();
  if (!fields.empty()) HeaderList::appendRecycled(fields.back().value, std::string_view(at, length));
  self->last_was_value_ = true;
  return 0;
}

BodyFraming HttpParser::framing() const {
  BodyFraming framing;
  framing.chunked = (parser_.flags & F_CHUNKED) != 0;
  if ((parser_.flags & F_CONTENT_LENGTH) != 0) framing.content_length = parser_.content_length;
  if (kind_ == Kind::kResponse && !framing.chunked && !framing.content_length) {
    framing.until_close = llhttp_message_needs_eof(&parser_) != 0;
  }
  return framing;
}

int HttpParser::onHeadersComplete(llhttp_t* parser) {
  HttpParser* self = owner(parser);
  self->head_complete_ = true;
  // llhttp accepts obsolete line folding and hands the fold through; a CR or LF must never
  // reach a re-serialised head (RFC 9112 section 5.2 allows rejecting it). A head the classifier
  // found nothing in has no fold (folds it finds are joined, unless only monitored).
  if (!self->verdict_.compliant()) {
    for (const Header& field : self->headers_.fields()) {
      if (field.value.find_first_of("\r\n") != std::string::npos) {
        return self->fail(ParseError::kMalformed, "obsolete line folding in a header field");
      }
    }
  }
  BodyFraming framing = self->framing();
  bool keep_alive = llhttp_should_keep_alive(parser) != 0;
  if (self->kind_ == Kind::kRequest) {
    if (parser->method == HTTP_CONNECT) return self->fail(ParseError::kNotImplemented, "CONNECT is not supported");
    if (self->limits_.max_body != 0 && framing.content_length && *framing.content_length > self->limits_.max_body) {
      return self->fail(ParseError::kBodyTooLarge, "request body larger than the limit");
    }
    RequestHead head;
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(parser->method));
    head.target = std::move(self->url_);
    head.version_minor = parser->http_minor == 0 ? 0 : 1;
    head.framing = framing;
    // An Ambiguous request ends its connection (unless only monitored).
    head.keep_alive = keep_alive && !(self->verdict_.head_class == HeadClass::kAmbiguous &&
                                      self->limits_.desync_mode != DesyncMode::kMonitor);
    head.verdict = self->verdict_;
    const std::string* expect = self->headers_.find("Expect");
    head.expect_continue = expect != nullptr && equalsIgnoreCase(*expect, "100-continue");
    head.headers = std::move(self->headers_);
    self->handler_->onRequestHead(std::move(head));
    return 0;
  }
  ResponseHead head;
  head.status = parser->status_code;
  head.reason = std::move(self->reason_);
  head.version_minor = parser->http_minor == 0 ? 0 : 1;
  head.framing = framing;
  head.keep_alive = keep_alive && self->verdict_.head_class != HeadClass::kAmbiguous;  // never reused
  head.headers = std::move(self->headers_);
  bool no_body = self->handler_->onResponseHead(std::move(head));
  return no_body ? 1 : 0;
}

int HttpParser::onBodyData(llhttp_t* parser, const char* at, size_t length) {
  HttpParser* self = owner(parser);
  self->body_bytes_ += length;
  if (self->kind_ == Kind::kRequest && self->limits_.max_body != 0 && self->body_bytes_ > self->limits_.max_body) {
    return self->fail(ParseError::kBodyTooLarge, "request body larger than the limit");
  }
  if (self->feeding_ == nullptr) {
    self->handler_->onBody(Bytes::copyOf(std::string_view(at, length)));
  } else {
    self->handler_->onBody(Bytes(self->feeding_->owner, at, length));
  }
  return 0;
}

int HttpParser::onMessageDone(llhttp_t* parser) {
  HttpParser* self = owner(parser);
  self->in_message_ = false;
  self->head_parsed_ = false;
  self->handler_->onMessageComplete();
  return HPE_PAUSED;
}

}  // namespace stickyproxy
