// Fuzz target "chunked_body": the chunked decoder of HttpParser (proxy/http/http_parser.h), for a
// request body from a client and for a response body from a worker. The input is the body (chunk
// lines, data, trailers, and whatever follows) after a fixed head that says
// "Transfer-Encoding: chunked".
//
// Input: byte 0 seeds the piece sizes; byte 1 picks the largest piece (low 6 bits), a response
// instead of a request (bit 6) and a 64-byte body limit (bit 7); the rest is the body.
//
// Invariants: the same messages whole and in pieces; a request body never passes the limit; and a
// decoded body, chunked again as the proxy writes it, decodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "tests/fuzz/http_fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  const std::optional<SplitInput> input = SplitInput::of(data, size);
  if (!input) return 0;
  const uint32_t seed = input->seed;
  const bool response = input->flag_40;
  ParserLimits limits;
  if (input->flag_80) limits.max_body = 64;
  const HttpParser::Kind kind = response ? HttpParser::Kind::kResponse : HttpParser::Kind::kRequest;
  const std::string head = response ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    : "POST /upload HTTP/1.1\r\nHost: w1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string stream = head + std::string(input->stream);

  const ParseRun whole = parseStream(kind, stream, {}, limits);
  const ParseRun split = parseStream(kind, stream, input->pieces(stream.size()), limits);
  checkSameOutcome(whole, split);
  FUZZ_CHECK(!whole.messages.empty(), "the fixed head was not seen");
  const SeenMessage& first = whole.messages[0];
  FUZZ_CHECK(response ? first.response.size() == 1 && first.response[0].framing.chunked
                      : first.request.size() == 1 && first.request[0].framing.chunked,
             describe(first));
  if (!response && limits.max_body != 0) FUZZ_CHECK(first.body.size() <= limits.max_body, describe(first));
  if (!first.complete) return 0;

  // Chunked again, one chunk per piece (ClientConnection::sendBody() and the server's response
  // writer), the body must decode to the same bytes.
  std::string again = head;
  size_t offset = 0;
  for (size_t piece : pieceSizes(first.body.size(), seed + 1, 100)) {
    char line[24];
    int length = std::snprintf(line, sizeof line, "%zx\r\n", piece);
    again.append(line, static_cast<size_t>(length)).append(first.body, offset, piece).append("\r\n");
    offset += piece;
  }
  again += "0\r\n\r\n";
  ParserLimits roomy;
  const ParseRun reparsed = parseStream(kind, again, {}, roomy);
  FUZZ_CHECK(!reparsed.failed && reparsed.messages.size() == 1 && reparsed.messages[0].complete,
             "the body chunked again does not parse: " + reparsed.reason);
  FUZZ_CHECK(reparsed.messages[0].body == first.body, "the body chunked again decodes differently");
  return 0;
}
