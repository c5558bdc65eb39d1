// Fuzz target "response_head": bytes from a worker, parsed by the response HttpParser that the
// proxy's upstream connections use (proxy/http/http_parser.h), fed whole and in pieces.
//
// Input: byte 0 seeds the piece sizes; byte 1 picks the largest piece (low 6 bits), whether the
// responses answer a HEAD request (bit 6: no body whatever the head says) and tiny limits
// (bit 7); the rest is the byte stream of the connection.
//
// Invariants: the same messages whole and in pieces (a refused head is an error, not a finding);
// nothing parsed holds CR, LF or NUL, a control character in the reason, an empty field name or a
// status outside 100..999; a head
// answering HEAD has no body; and every head, serialised as the proxy writes it to the client,
// parses back to the same status, fields and framing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/http_message.h"
#include "tests/fuzz/http_fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

bool hasLineBreakOrNul(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

void checkReserialised(const SeenMessage& message) {
  const ResponseHead& head = message.response[0];
  FUZZ_CHECK(head.reason.find_first_of("\r\n") == std::string::npos, describe(message));
  for (char c : head.reason) {
    const auto byte = static_cast<unsigned char>(c);
    FUZZ_CHECK(byte == '\t' || (byte >= 0x20 && byte != 0x7f), "a control character in the reason phrase");
  }
  FUZZ_CHECK(head.status >= 100 && head.status <= 599, describe(message));
  for (const Header& field : head.headers.fields()) {
    FUZZ_CHECK(!field.name.empty(), "an empty field name:\n" + describe(message));
    FUZZ_CHECK(!hasLineBreakOrNul(field.name) && !hasLineBreakOrNul(field.value), describe(message));
  }
  const std::string stream = serializeResponseHead(head);
  ParserLimits roomy;
  roomy.max_head_bytes = 1 << 22;
  roomy.max_headers = 100000;
  // Heads only: the response may announce a body that is not there, so the parse stops after
  // the head (as for a HEAD request).
  const ParseRun again = parseStream(HttpParser::Kind::kResponse, stream, {}, roomy, true);
  FUZZ_CHECK(!again.failed, "the serialised head does not parse (" + again.reason + "):\n" + stream);
  FUZZ_CHECK(again.messages.size() == 1 && again.messages[0].response.size() == 1,
             "the serialised head parses as " + std::to_string(again.messages.size()) + " messages:\n" + stream);
  const ResponseHead& seen = again.messages[0].response[0];
  FUZZ_CHECK(seen.status == head.status && seen.version_minor == head.version_minor, "status line changed:\n" + stream);
  FUZZ_CHECK(head.reason.empty() || seen.reason == head.reason, "reason changed:\n" + stream);
  FUZZ_CHECK(sameHeaders(seen.headers, head.headers), "fields changed:\n" + stream);
  FUZZ_CHECK(sameFraming(seen.framing, head.framing), "framing changed:\n" + stream);
  // An Ambiguous head (an obsolete fold, say) is parsed normalised and never keeps its worker
  // connection (keep_alive false), while its normalised form alone is compliant: the serialised
  // head may then allow what the original did not, never the other way round.
  FUZZ_CHECK(seen.keep_alive == head.keep_alive || !head.keep_alive, "keep-alive changed:\n" + stream);
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  const std::optional<SplitInput> input = SplitInput::of(data, size);
  if (!input) return 0;
  const bool answers_head = input->flag_40;
  ParserLimits limits;
  if (input->flag_80) limits = ParserLimits{64, 256, 8, 64};
  const std::string_view stream = input->stream;

  const ParseRun whole = parseStream(HttpParser::Kind::kResponse, stream, {}, limits, answers_head);
  const ParseRun split =
      parseStream(HttpParser::Kind::kResponse, stream, input->pieces(stream.size()), limits, answers_head);
  checkSameOutcome(whole, split);
  for (const SeenMessage& message : whole.messages) {
    FUZZ_CHECK(message.response.size() == 1, "a message without its head");
    // 1xx heads are interim: the final response follows on the same connection.
    if (answers_head && message.response[0].status >= 200) {
      FUZZ_CHECK(message.body.empty(), "a body in the answer to HEAD: " + describe(message));
    }
    checkReserialised(message);
  }
  return 0;
}
