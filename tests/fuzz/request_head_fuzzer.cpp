// Fuzz target "request_head": bytes from a client, parsed by the proxy's request HttpParser
// (proxy/http/http_parser.h), fed whole and in pieces, then rewritten as the proxy forwards a
// request and parsed again as a worker would.
//
// Input: byte 0 seeds the piece sizes, byte 1 picks the largest piece (low 6 bits) and tiny
// limits instead of the defaults (bit 7); the rest is the byte stream of the connection.
//
// Invariants: the same messages whole and in pieces; a refused head (the classifier's Severe
// class) is an error, never a finding; nothing parsed holds CR, LF or NUL, an empty field name or
// a version other than 1.0 and 1.1; an Ambiguous request does not keep the connection alive; and
// the forwarded form of every complete request parses back, alone, to the same method, target,
// fields, framing and body (no request smuggling through the rewrite), and is neither Severe nor
// still in need of the normalisation (look-alike framing fields, folds, repeated lengths).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/http_message.h"
#include "tests/fuzz/http_fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

bool hasLineBreakOrNul(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

// The head the proxy writes to a worker: ProxyRequest::upstreamHead() (hop-by-hop fields, Expect
// and X-Sticky-Previous-Worker removed, X-Forwarded-* set, HTTP/1.1, Connection: close after an
// Ambiguous request in the default desync_mode, a Host when there was none) and then
// ClientConnection::startRequest() (the framing fields made again from the parsed framing). Both
// are members of objects that need a running proxy and a socket, so their steps are mirrored
// here with the same free functions of proxy/http/http_message.h.
RequestHead forwardedHead(const RequestHead& request) {
  RequestHead head;
  head.method = request.method;
  head.target = request.target;
  head.version_minor = 1;
  head.framing = request.framing;
  head.headers = request.headers;
  removeHopByHopHeaders(head.headers);
  head.headers.remove("Expect");
  head.headers.remove("X-Sticky-Previous-Worker");
  head.headers.set("X-Forwarded-For", "192.0.2.7");
  head.headers.set("X-Forwarded-Proto", "http");
  const std::string* host = request.headers.find("Host");
  if (host != nullptr) {
    head.headers.set("X-Forwarded-Host", *host);
  } else {
    head.headers.remove("X-Forwarded-Host");
  }
  if (request.verdict.head_class == HeadClass::kAmbiguous) head.headers.add("Connection", "close");
  if (head.headers.find("Host") == nullptr) head.headers.add("Host", "w1");
  if (head.framing.chunked || head.framing.content_length) {
    head.headers.remove("Content-Length");
    head.headers.remove("Transfer-Encoding");
    if (head.framing.chunked) {
      head.headers.add("Transfer-Encoding", "chunked");
    } else {
      head.headers.add("Content-Length", std::to_string(*head.framing.content_length));
    }
  }
  return head;
}

// The body as ClientConnection::sendBody() writes it: each piece a chunk when chunked.
std::string forwardedBody(const RequestHead& head, const std::string& body, uint32_t seed) {
  if (!head.framing.chunked) return body;
  std::string out;
  size_t offset = 0;
  for (size_t size : pieceSizes(body.size(), seed, 300)) {
    char line[24];
    int length = std::snprintf(line, sizeof line, "%zx\r\n", size);
    out.append(line, static_cast<size_t>(length)).append(body, offset, size).append("\r\n");
    offset += size;
  }
  return out + "0\r\n\r\n";
}

void checkForwarded(const SeenMessage& message, uint32_t seed) {
  const RequestHead& request = message.request[0];
  FUZZ_CHECK(!hasLineBreakOrNul(request.method) && !hasLineBreakOrNul(request.target), describe(message));
  FUZZ_CHECK(request.version_minor == 0 || request.version_minor == 1, describe(message));
  FUZZ_CHECK(request.verdict.head_class != HeadClass::kSevere, "a Severe head was accepted:\n" + describe(message));
  FUZZ_CHECK(request.verdict.head_class != HeadClass::kAmbiguous || !request.keep_alive,
             "an Ambiguous request keeps the connection:\n" + describe(message));
  for (const Header& field : request.headers.fields()) {
    FUZZ_CHECK(!field.name.empty(), "an empty field name:\n" + describe(message));
    FUZZ_CHECK(!hasLineBreakOrNul(field.name) && !hasLineBreakOrNul(field.value), describe(message));
  }
  const RequestHead wire = forwardedHead(request);
  const std::string stream = serializeRequestHead(wire) + forwardedBody(wire, message.body, seed);
  ParserLimits roomy;
  roomy.max_request_line = 1 << 20;
  roomy.max_head_bytes = 1 << 22;
  roomy.max_headers = 100000;
  const ParseRun again = parseStream(HttpParser::Kind::kRequest, stream, {}, roomy);
  FUZZ_CHECK(!again.failed, "the forwarded request does not parse (" + again.reason + "):\n" + stream);
  FUZZ_CHECK(again.messages.size() == 1 && again.messages[0].complete && again.messages[0].request.size() == 1,
             "the forwarded request parses as " + std::to_string(again.messages.size()) + " messages:\n" + stream);
  const RequestHead& seen = again.messages[0].request[0];
  FUZZ_CHECK(seen.method == wire.method && seen.target == wire.target && seen.version_minor == 1,
             "request line changed:\n" + stream);
  FUZZ_CHECK(sameHeaders(seen.headers, wire.headers), "fields changed:\n" + stream);
  const HeadIssue issue = seen.verdict.issue;
  FUZZ_CHECK(seen.verdict.head_class != HeadClass::kSevere && issue != HeadIssue::kFramingLookalike &&
                 issue != HeadIssue::kObsoleteFold && issue != HeadIssue::kDuplicateContentLength,
             "the forwarded head is " + std::string(headClassName(seen.verdict.head_class)) + " (" +
                 std::string(seen.verdict.label()) + "):\n" + stream);
  if (request.verdict.head_class == HeadClass::kAmbiguous) FUZZ_CHECK(!seen.keep_alive, "kept alive:\n" + stream);
  FUZZ_CHECK(seen.framing.chunked == request.framing.chunked &&
                 (request.framing.chunked || seen.framing.content_length == request.framing.content_length),
             "framing changed:\n" + stream);
  FUZZ_CHECK(again.messages[0].body == message.body, "body changed:\n" + stream);
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  if (size < 2) return 0;
  const uint32_t seed = data[0];
  const size_t max_piece = 1 + (data[1] & 0x3f);
  ParserLimits limits;
  if ((data[1] & 0x80) != 0) limits = ParserLimits{64, 256, 8, 64};
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const ParseRun whole = parseStream(HttpParser::Kind::kRequest, stream, {}, limits);
  const ParseRun split = parseStream(HttpParser::Kind::kRequest, stream, pieceSizes(stream.size(), seed, max_piece), limits);
  checkSameOutcome(whole, split);
  for (const SeenMessage& message : whole.messages) {
    FUZZ_CHECK(message.request.size() == 1, "a message without its head");
    if (limits.max_body != 0) FUZZ_CHECK(message.body.size() <= limits.max_body, describe(message));
    if (message.complete) checkForwarded(message, seed);
  }
  return 0;
}
