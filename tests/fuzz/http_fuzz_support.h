// Drives HttpParser (proxy/http) over a byte stream the way the server and the client do: feed,
// and after each complete message feed the rest again; at the end of the stream, finish() a
// message in progress. Records what the handler
// saw, so that a stream fed whole and the same stream fed in pieces can be compared.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/http_parser.h"
#include "proxy/net/bytes.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {

// One message as the handler saw it.
struct SeenMessage {
  std::vector<RequestHead> request;    // 0 or 1
  std::vector<ResponseHead> response;  // 0 or 1
  std::string body;                    // every onBody() piece, concatenated
  bool complete = false;
};

struct ParseRun {
  std::vector<SeenMessage> messages;
  bool failed = false;
  ParseError error = ParseError::kNone;
  std::string reason;
};

class RecordingHandler final : public HttpParser::Handler {
 public:
  explicit RecordingHandler(bool responses_have_no_body) : no_body_(responses_have_no_body) {}

  void onRequestHead(RequestHead&& head) override { current().request.push_back(std::move(head)); }
  bool onResponseHead(ResponseHead&& head) override {
    current().response.push_back(std::move(head));
    return no_body_;
  }
  void onBody(const Bytes& data) override {
    FUZZ_CHECK(data.size > 0, "an empty body piece");
    current().body.append(data.view());
  }
  void onMessageComplete() override {
    current().complete = true;
    open_ = false;
  }

  std::vector<SeenMessage> messages;

 private:
  SeenMessage& current() {
    if (!open_) {
      messages.emplace_back();
      open_ = true;
    }
    return messages.back();
  }

  bool no_body_;
  bool open_ = false;
};

// Parses `stream` in pieces of `sizes` (one piece when empty). Each piece lives in its own slab
// of exactly its size, so that AddressSanitizer sees any read past a piece.
inline ParseRun parseStream(HttpParser::Kind kind, std::string_view stream, const std::vector<size_t>& sizes,
                            ParserLimits limits, bool responses_have_no_body = false) {
  RecordingHandler handler(responses_have_no_body);
  HttpParser parser(kind, &handler, limits);
  std::vector<size_t> pieces = sizes.empty() ? std::vector<size_t>{stream.size()} : sizes;
  size_t offset = 0;
  for (size_t size : pieces) {
    if (parser.error() != ParseError::kNone) break;
    Bytes piece = Bytes::copyOf(stream.substr(offset, size));
    offset += size;
    while (!piece.empty() && parser.error() == ParseError::kNone) {
      size_t consumed = parser.feed(piece);
      if (parser.error() != ParseError::kNone) break;
      FUZZ_CHECK(consumed > 0 && consumed <= piece.size, "feed() consumed " + std::to_string(consumed) +
                                                             " of " + std::to_string(piece.size) + " bytes without an error");
      piece = piece.suffix(consumed);
    }
  }
  // The peer closes: as the server and the client do, only a message in progress is finished
  // (which completes a body that runs until close, or flags a truncated message).
  if (parser.error() == ParseError::kNone && parser.inMessage()) parser.finish();
  ParseRun run;
  run.messages = std::move(handler.messages);
  run.error = parser.error();
  run.failed = run.error != ParseError::kNone;
  run.reason = parser.errorReason();
  FUZZ_CHECK(run.failed || run.reason.empty(), "an error reason without an error: " + run.reason);
  FUZZ_CHECK(!run.failed || !run.reason.empty(), "an error without a reason");
  return run;
}

inline bool sameHeaders(const HeaderList& a, const HeaderList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.fields()[i].name != b.fields()[i].name || a.fields()[i].value != b.fields()[i].value) return false;
  }
  return true;
}

inline bool sameFraming(const BodyFraming& a, const BodyFraming& b) {
  return a.chunked == b.chunked && a.content_length == b.content_length && a.until_close == b.until_close;
}

inline bool sameRequest(const RequestHead& a, const RequestHead& b) {
  return a.method == b.method && a.target == b.target && a.version_minor == b.version_minor &&
         sameHeaders(a.headers, b.headers) && sameFraming(a.framing, b.framing) && a.keep_alive == b.keep_alive &&
         a.expect_continue == b.expect_continue;
}

inline bool sameResponse(const ResponseHead& a, const ResponseHead& b) {
  return a.status == b.status && a.reason == b.reason && a.version_minor == b.version_minor &&
         sameHeaders(a.headers, b.headers) && sameFraming(a.framing, b.framing) && a.keep_alive == b.keep_alive;
}

// What one message looked like, for the message of a violated invariant.
inline std::string describe(const SeenMessage& message) {
  std::string out;
  if (!message.request.empty()) {
    out += message.request[0].method + " " + message.request[0].target + "\n";
    for (const Header& field : message.request[0].headers.fields()) out += field.name + ": " + field.value + "\n";
  }
  if (!message.response.empty()) {
    out += std::to_string(message.response[0].status) + " " + message.response[0].reason + "\n";
    for (const Header& field : message.response[0].headers.fields()) out += field.name + ": " + field.value + "\n";
  }
  out += "body " + std::to_string(message.body.size()) + " bytes" + (message.complete ? ", complete" : ", incomplete");
  return out;
}

// Feeding a stream whole or in pieces must not change what the handler sees: the same messages,
// heads and bodies, and an error in both runs or in neither. (Which error, and the body bytes
// handed out before it, may differ: a split can trip a size limit before the byte that the whole
// run rejects first.)
inline void checkSameOutcome(const ParseRun& whole, const ParseRun& split) {
  FUZZ_CHECK(whole.failed == split.failed,
             "whole: " + (whole.failed ? whole.reason : std::string("ok")) + "; in pieces: " +
                 (split.failed ? split.reason : std::string("ok")));
  // An error stops the run; everything up to the last complete message must agree.
  size_t count = whole.messages.size();
  if (whole.failed) {
    count = 0;
    while (count < whole.messages.size() && whole.messages[count].complete) ++count;
    size_t split_complete = 0;
    while (split_complete < split.messages.size() && split.messages[split_complete].complete) ++split_complete;
    FUZZ_CHECK(count == split_complete, "complete messages before the error: whole " + std::to_string(count) +
                                            ", in pieces " + std::to_string(split_complete));
  } else {
    FUZZ_CHECK(whole.messages.size() == split.messages.size(),
               "messages: whole " + std::to_string(whole.messages.size()) + ", in pieces " +
                   std::to_string(split.messages.size()));
  }
  for (size_t i = 0; i < count; ++i) {
    const SeenMessage& a = whole.messages[i];
    const SeenMessage& b = split.messages[i];
    bool same = a.request.size() == b.request.size() && a.response.size() == b.response.size() &&
                a.body == b.body && a.complete == b.complete;
    if (same && !a.request.empty()) same = sameRequest(a.request[0], b.request[0]);
    if (same && !a.response.empty()) same = sameResponse(a.response[0], b.response[0]);
    FUZZ_CHECK(same, "message " + std::to_string(i) + " whole:\n" + describe(a) + "\nin pieces:\n" + describe(b));
  }
}

}  // namespace stickyproxy::fuzz
