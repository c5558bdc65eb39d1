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

#include "proxy/core/upstream_head.h"
#include "proxy/http/http_message.h"
#include "tests/fuzz/http_fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

bool hasLineBreakOrNul(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

// The bytes the proxy writes to a worker for `request` (writeUpstreamHead() as ProxyRequest calls
// it for an untrusted peer) and its body as ClientConnection::sendBody() writes it: each piece a
// chunk when chunked.
std::string forwardedStream(const RequestHead& request, const std::string& body, uint32_t seed) {
  ForwardingContext context;
  context.peer_ip = "192.0.2.7";
  context.close_after = request.verdict.head_class == HeadClass::kAmbiguous;
  context.default_host = "w1";
  std::string out;
  writeUpstreamHead(request, context, &out);
  if (!request.framing.chunked) return out + body;
  size_t offset = 0;
  for (size_t size : pieceSizes(body.size(), seed, 300)) {
    out.append(chunkSizeLine(size)).append(body, offset, size).append("\r\n");
    offset += size;
  }
  return out + "0\r\n\r\n";
}

// `headers` without the fields the proxy writes itself (forwarding, framing, Connection) and, when
// `drop_host`, Host.
HeaderList withoutProxyFields(HeaderList headers, bool drop_host) {
  for (const char* name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Content-Length",
                           "Transfer-Encoding", "Connection"}) {
    headers.remove(name);
  }
  if (drop_host) headers.remove("Host");
  return headers;
}

// The client's end-to-end fields as the worker must see them, by removeHopByHopHeaders() (the
// structured form of what writeUpstreamHead() drops in passing).
HeaderList endToEnd(const RequestHead& request) {
  HeaderList headers = request.headers;
  removeHopByHopHeaders(headers);
  headers.remove("Expect");
  headers.remove(kPreviousWorkerHeader);
  return withoutProxyFields(std::move(headers), false);
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
  const std::string stream = forwardedStream(request, message.body, seed);
  ParserLimits roomy;
  roomy.max_request_line = 1 << 20;
  roomy.max_head_bytes = 1 << 22;
  roomy.max_headers = 100000;
  const ParseRun again = parseStream(HttpParser::Kind::kRequest, stream, {}, roomy);
  FUZZ_CHECK(!again.failed, "the forwarded request does not parse (" + again.reason + "):\n" + stream);
  FUZZ_CHECK(again.messages.size() == 1 && again.messages[0].complete && again.messages[0].request.size() == 1,
             "the forwarded request parses as " + std::to_string(again.messages.size()) + " messages:\n" + stream);
  const RequestHead& seen = again.messages[0].request[0];
  FUZZ_CHECK(seen.method == request.method && seen.target == request.target && seen.version_minor == 1,
             "request line changed:\n" + stream);
  const std::string* host = request.headers.find("Host");
  FUZZ_CHECK(sameHeaders(withoutProxyFields(seen.headers, host == nullptr), endToEnd(request)),
             "end-to-end fields changed:\n" + stream);
  const std::string* forwarded_for = seen.headers.find("X-Forwarded-For");
  const std::string* forwarded_host = seen.headers.find("X-Forwarded-Host");
  const std::string* seen_host = seen.headers.find("Host");
  FUZZ_CHECK(forwarded_for != nullptr && *forwarded_for == "192.0.2.7" && seen.headers.hasToken("X-Forwarded-Proto", "http"),
             "forwarding fields:\n" + stream);
  FUZZ_CHECK(host == nullptr ? forwarded_host == nullptr && seen_host != nullptr && *seen_host == "w1"
                             : forwarded_host != nullptr && *forwarded_host == *host,
             "Host or X-Forwarded-Host:\n" + stream);
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
  const std::optional<SplitInput> input = SplitInput::of(data, size);
  if (!input) return 0;
  ParserLimits limits;
  if (input->flag_80) limits = ParserLimits{64, 256, 8, 64};
  const std::string_view stream = input->stream;

  const ParseRun whole = parseStream(HttpParser::Kind::kRequest, stream, {}, limits);
  const ParseRun split = parseStream(HttpParser::Kind::kRequest, stream, input->pieces(stream.size()), limits);
  checkSameOutcome(whole, split);
  for (const SeenMessage& message : whole.messages) {
    FUZZ_CHECK(message.request.size() == 1, "a message without its head");
    if (limits.max_body != 0) FUZZ_CHECK(message.body.size() <= limits.max_body, describe(message));
    if (message.complete) checkForwarded(message, input->seed);
  }
  return 0;
}
