#include "proxy/http/http_parser.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace stickyproxy;

namespace {

// Collects what the parser reports.
struct Recorder : HttpParser::Handler {
  std::vector<RequestHead> requests;
  std::vector<ResponseHead> responses;
  std::string body;
  int completed = 0;
  bool no_body_answer = false;
  void onRequestHead(RequestHead&& head) override { requests.push_back(std::move(head)); }
  bool onResponseHead(ResponseHead&& head) override {
    responses.push_back(std::move(head));
    return no_body_answer;
  }
  void onBody(const Bytes& data) override { body.append(data.data, data.size); }
  void onMessageComplete() override { ++completed; }
};

// Feeds `text` the way a connection does: again after each completed message.
size_t feedAll(HttpParser& parser, std::string_view text) {
  Bytes bytes = Bytes::copyOf(text);
  size_t total = 0;
  while (total < bytes.size) {
    size_t consumed = parser.feed(bytes.suffix(total));
    total += consumed;
    if (parser.error() != ParseError::kNone || consumed == 0) break;
  }
  return total;
}

// A parser of `kind` with its own Recorder, fed `text` the way a connection feeds it.
struct Parse {
  Parse(HttpParser::Kind kind, std::string_view text, ParserLimits limits = {}, bool no_body_answer = false)
      : parser(kind, &recorder, limits) {
    recorder.no_body_answer = no_body_answer;
    consumed = feedAll(parser, text);
  }

  Recorder recorder;
  HttpParser parser;
  size_t consumed = 0;
};

}  // namespace

TEST_CASE("a request head is parsed into method, target, fields and framing", "[http]") {
  Parse parse(HttpParser::Kind::kRequest,
              "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
  REQUIRE(parse.recorder.requests.size() == 1);
  const RequestHead& head = parse.recorder.requests[0];
  CHECK(head.method == "POST");
  CHECK(head.target == "/upload");
  CHECK(head.framing.content_length == 5u);
  CHECK_FALSE(head.framing.chunked);
  CHECK(head.expect_continue);
  CHECK(head.keep_alive);
  CHECK(parse.recorder.body == "hello");
  CHECK(parse.recorder.completed == 1);
}

TEST_CASE("a finished head leaves its field storage to the next head its thread parses", "[http]") {
  const std::string cookie(200, 'c');
  const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + cookie + "\r\n\r\n";
  const char* value_storage = nullptr;
  const Header* field_storage = nullptr;
  {
    Parse first(HttpParser::Kind::kRequest, text);
    REQUIRE(first.recorder.requests.size() == 1);
    const HeaderList& headers = first.recorder.requests[0].headers;
    value_storage = headers.find("Cookie")->data();
    field_storage = headers.fields().data();
  }
  Parse second(HttpParser::Kind::kRequest, text);
  REQUIRE(second.recorder.requests.size() == 1);
  const HeaderList& headers = second.recorder.requests[0].headers;
  REQUIRE(headers.find("Cookie") != nullptr);
  CHECK(*headers.find("Cookie") == cookie);
  CHECK(*headers.find("Host") == "h");
  CHECK(headers.find("Cookie")->data() == value_storage);
  CHECK(headers.fields().data() == field_storage);
}

TEST_CASE("a cleared header list keeps its storage and reads as empty", "[http]") {
  HeaderList headers;
  headers.reserveRecycled(4);
  HeaderList::appendRecycled(headers.addRecycled("X-A-Rather-Long-Field-Name").value, std::string(100, 'v'));
  CHECK(headers.find("x-a-rather-long-field-name")->size() == 100);
  size_t capacity = headers.fields().capacity();
  headers.clear();
  CHECK(headers.size() == 0);
  CHECK(headers.find("X-A-Rather-Long-Field-Name") == nullptr);
  CHECK(headers.fields().capacity() == capacity);
  HeaderList moved_into;
  moved_into.add("Old", "field");
  headers.add("New", "field");
  moved_into = std::move(headers);
  REQUIRE(moved_into.size() == 1);
  CHECK(moved_into.fields()[0].name == "New");
}

TEST_CASE("parsing stops after each message so pipelined requests are handled in order", "[http]") {
  Recorder recorder;
  HttpParser parser(HttpParser::Kind::kRequest, &recorder, ParserLimits{});
  std::string two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  Bytes bytes = Bytes::copyOf(two);
  size_t first = parser.feed(bytes);
  CHECK(first == two.size() / 2);
  CHECK(recorder.requests.size() == 1);
  parser.feed(bytes.suffix(first));
  REQUIRE(recorder.requests.size() == 2);
  CHECK(recorder.requests[1].target == "/b");
}

TEST_CASE("chunked bodies arrive de-chunked", "[http]") {
  Parse parse(HttpParser::Kind::kRequest,
              "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  REQUIRE(parse.recorder.requests.size() == 1);
  CHECK(parse.recorder.requests[0].framing.chunked);
  CHECK(parse.recorder.body == "hello world");
  CHECK(parse.recorder.completed == 1);
}

TEST_CASE("limits map to 414, 431 and 413", "[http]") {
  ParserLimits limits;
  limits.max_request_line = 64;
  limits.max_head_bytes = 256;
  limits.max_headers = 4;
  limits.max_body = 10;
  struct Case {
    const char* what;
    std::string text;
    ParseError error;
    int status;
  };
  const Case cases[] = {
      {"request line", "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", ParseError::kRequestLineTooLong, 414},
      {"head bytes", "GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'b') + "\r\n\r\n", ParseError::kHeadTooLarge, 431},
      {"header count", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", ParseError::kHeadTooLarge, 431},
      {"declared body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", ParseError::kBodyTooLarge, 413},
      {"chunked body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
       ParseError::kBodyTooLarge, 413},
  };
  for (const Case& limit : cases) {
    INFO(limit.what);
    Parse parse(HttpParser::Kind::kRequest, limit.text, limits);
    INFO(parse.parser.errorReason());
    CHECK(parse.parser.error() == limit.error);
    CHECK(statusForParseError(parse.parser.error()) == limit.status);
  }
  // A declared body over the limit is refused before its head is reported.
  CHECK(Parse(HttpParser::Kind::kRequest, cases[3].text, limits).recorder.requests.empty());
}

TEST_CASE("malformed requests are refused with 400 and smuggling shapes are rejected", "[http]") {
  for (std::string bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
                          std::string("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc"),
                          std::string("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")}) {
    Parse parse(HttpParser::Kind::kRequest, bad);
    INFO(bad);
    CHECK(parse.parser.error() != ParseError::kNone);
    CHECK(statusForParseError(parse.parser.error()) >= 400);
  }
}

TEST_CASE("obsolete line folding becomes a space, never a CR or LF in a value", "[http]") {
  Parse parse(HttpParser::Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n");
  REQUIRE(parse.recorder.requests.size() == 1);
  CHECK(*parse.recorder.requests[0].headers.find("X-Folded") == "a b");
}

TEST_CASE("HTTP/1.0 and Connection: close end keep-alive", "[http]") {
  Parse http10(HttpParser::Kind::kRequest, "GET / HTTP/1.0\r\n\r\n");
  REQUIRE(http10.recorder.requests.size() == 1);
  CHECK_FALSE(http10.recorder.requests[0].keep_alive);
  Parse close(HttpParser::Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  CHECK_FALSE(close.recorder.requests[0].keep_alive);
}

TEST_CASE("a response body that runs until close completes at end of stream", "[http]") {
  Parse parse(HttpParser::Kind::kResponse, "HTTP/1.1 200 OK\r\n\r\npartial body");
  REQUIRE(parse.recorder.responses.size() == 1);
  CHECK(parse.recorder.responses[0].framing.until_close);
  CHECK(parse.recorder.completed == 0);
  parse.parser.finish();
  CHECK(parse.recorder.completed == 1);
  CHECK(parse.recorder.body == "partial body");
}

TEST_CASE("the answer to a HEAD request has no body despite its Content-Length", "[http]") {
  std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  Parse parse(HttpParser::Kind::kResponse, text, ParserLimits{}, /*no_body_answer=*/true);
  CHECK(parse.recorder.completed == 2);
  CHECK(parse.consumed == text.size());
}

TEST_CASE("a head split anywhere across reads parses as if it came whole", "[http][classifier]") {
  const std::string text =
      "\r\nPOST /u?x=1 HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t split = 1; split < text.size(); ++split) {
    INFO("split at " << split);
    Recorder recorder;
    HttpParser parser(HttpParser::Kind::kRequest, &recorder, ParserLimits{});
    Bytes first = Bytes::copyOf(std::string_view(text).substr(0, split));
    Bytes second = Bytes::copyOf(std::string_view(text).substr(split));
    for (Bytes piece : {first, second}) {
      while (!piece.empty() && parser.error() == ParseError::kNone) {
        size_t consumed = parser.feed(piece);
        REQUIRE(consumed > 0);
        piece = piece.suffix(consumed);
      }
    }
    REQUIRE(parser.error() == ParseError::kNone);
    REQUIRE(recorder.requests.size() == 2);
    CHECK(recorder.requests[0].target == "/u?x=1");
    CHECK(*recorder.requests[0].headers.find("X-Folded") == "a b");
    CHECK(recorder.requests[0].verdict.issue == HeadIssue::kObsoleteFold);
    CHECK(recorder.requests[1].target == "/next");
    CHECK(recorder.requests[1].verdict.compliant());
    CHECK(recorder.body == "hello");
    CHECK(recorder.completed == 2);
  }
}

TEST_CASE("a severe head is refused before the handler sees it, with its rule's status", "[http][classifier]") {
  Parse bare_lf(HttpParser::Kind::kRequest, "GET / HTTP/1.1\nHost: h\r\n\r\n");
  CHECK(bare_lf.recorder.requests.empty());
  CHECK(statusForParseError(bare_lf.parser.error()) == 400);
  CHECK(bare_lf.parser.refusal().issue == HeadIssue::kBareLf);
  CHECK(bare_lf.parser.errorReason() == "desync severe: bare_lf");

  // A bare LF is refused as soon as it arrives, without waiting for the end of the head.
  Parse early(HttpParser::Kind::kRequest, "GET / HTTP/1.1\nHost: h");
  CHECK(early.parser.refusal().issue == HeadIssue::kBareLf);

  Parse coding(HttpParser::Kind::kRequest, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  CHECK(statusForParseError(coding.parser.error()) == 501);

  // Limits come first: a long request line is 414 even when it is also Severe.
  ParserLimits limits;
  limits.max_request_line = 16;
  Parse long_line(HttpParser::Kind::kRequest, "GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", limits);
  CHECK(long_line.parser.error() == ParseError::kRequestLineTooLong);
  CHECK(long_line.parser.refusal().compliant());
}

TEST_CASE("an ambiguous head is handed over normalised and ends keep-alive", "[http][classifier]") {
  Parse parse(HttpParser::Kind::kRequest,
              "POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi");
  REQUIRE(parse.recorder.requests.size() == 1);
  const RequestHead& head = parse.recorder.requests[0];
  CHECK(head.verdict.head_class == HeadClass::kAmbiguous);
  CHECK(head.headers.find("Transfer_Encoding") == nullptr);
  CHECK(head.framing.content_length == 2u);
  CHECK_FALSE(head.keep_alive);
  CHECK(parse.recorder.body == "hi");
}

TEST_CASE("desync modes: strictest refuses ambiguous heads, monitor passes what llhttp reads", "[http][classifier]") {
  const std::string get_with_body = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
  ParserLimits strictest;
  strictest.desync_mode = DesyncMode::kStrictest;
  Parse refused(HttpParser::Kind::kRequest, get_with_body, strictest);
  CHECK(refused.recorder.requests.empty());
  CHECK(refused.parser.refusal().issue == HeadIssue::kBodyOnBodilessMethod);

  ParserLimits monitor;
  monitor.desync_mode = DesyncMode::kMonitor;
  Parse counted(HttpParser::Kind::kRequest, get_with_body, monitor);
  REQUIRE(counted.recorder.requests.size() == 1);
  CHECK(counted.recorder.requests[0].keep_alive);
  CHECK(counted.recorder.requests[0].verdict.issue == HeadIssue::kBodyOnBodilessMethod);
  Parse severe(HttpParser::Kind::kRequest, "GET /a HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", monitor);
  REQUIRE(severe.recorder.requests.size() == 1);
  CHECK(severe.recorder.requests[0].verdict.issue == HeadIssue::kBadHeaderName);
  Parse bare_lf(HttpParser::Kind::kRequest, "GET /b HTTP/1.1\nHost: h\r\n\r\n", monitor);
  REQUIRE(bare_lf.recorder.requests.size() == 1);
  CHECK(bare_lf.recorder.requests[0].target == "/b");
}

TEST_CASE("a response with bad framing is an error whatever the mode", "[http][classifier]") {
  ParserLimits monitor;
  monitor.desync_mode = DesyncMode::kMonitor;
  Parse parse(HttpParser::Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-Length : 20\r\nContent-Length: 2\r\n\r\nhi",
              monitor);
  CHECK(parse.recorder.responses.empty());
  CHECK(parse.parser.error() == ParseError::kMalformed);
  // A truncated head at the end of the stream is an error too.
  Parse cut(HttpParser::Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-");
  CHECK(cut.parser.error() == ParseError::kNone);
  CHECK(cut.parser.inMessage());
  cut.parser.finish();
  CHECK(cut.parser.error() == ParseError::kMalformed);
}
