// Fuzz target "multipart": the upload body parser of the bundled app
// (backend/app/multipart_parser.h), with the boundary taken from a Content-Type value as the
// upload route does.
//
// Input: byte 0 seeds the piece sizes; byte 1 picks the largest piece (low 6 bits) and tiny limits
// (bit 7: 64-byte part heads, 4 parts); then the Content-Type value up to the first LF; the rest is
// the body.
//
// Invariants: a boundary from boundaryOf() is 1-70 boundary characters; the body fed whole and in
// pieces gives the same parts (heads and data), the same success and the same error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/app/multipart_parser.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

using backend::MultipartLimits;
using backend::MultipartParser;

struct SeenPart {
  std::string head;  // name, filename, type and fields, one per line
  std::string data;
  bool ended = false;
};

struct MultipartRun {
  std::vector<SeenPart> parts;
  bool ok = false;
  std::string error;
};

class RecordingHandler final : public MultipartParser::Handler {
 public:
  bool onPartBegin(const MultipartParser::Part& part) override {
    FUZZ_CHECK(parts.empty() || parts.back().ended, "a part began inside another");
    SeenPart seen;
    seen.head = "name=" + part.name + "\nfilename=" + (part.filename ? "\"" + *part.filename + "\"" : "(none)") +
                "\ntype=" + part.content_type + "\n";
    for (const Header& field : part.headers.fields()) seen.head += field.name + ": " + field.value + "\n";
    parts.push_back(std::move(seen));
    return true;
  }
  bool onPartData(const Bytes& data) override {
    FUZZ_CHECK(!parts.empty() && !parts.back().ended, "data outside a part");
    FUZZ_CHECK(data.size > 0, "an empty data piece");
    parts.back().data.append(data.view());
    return true;
  }
  bool onPartEnd() override {
    FUZZ_CHECK(!parts.empty() && !parts.back().ended, "the end of no part");
    parts.back().ended = true;
    return true;
  }

  std::vector<SeenPart> parts;
};

MultipartRun parseBody(const std::string& boundary, std::string_view body, const std::vector<size_t>& sizes,
                       MultipartLimits limits) {
  RecordingHandler handler;
  MultipartParser parser(boundary, &handler, limits);
  std::vector<size_t> pieces = sizes.empty() ? std::vector<size_t>{body.size()} : sizes;
  size_t offset = 0;
  bool fed = true;
  for (size_t size : pieces) {
    // Each piece in a slab of its own size, so that AddressSanitizer sees a read past it.
    fed = parser.feed(Bytes::copyOf(body.substr(offset, size)));
    offset += size;
    if (!fed) break;
  }
  MultipartRun run;
  run.ok = fed && parser.finish();
  FUZZ_CHECK(run.ok == parser.complete(), "finish() and complete() disagree");
  FUZZ_CHECK(run.ok == parser.error().empty(), "ok " + std::to_string(run.ok) + " with error \"" + parser.error() + "\"");
  run.error = parser.error();
  run.parts = std::move(handler.parts);
  if (run.ok) {
    for (const SeenPart& part : run.parts) FUZZ_CHECK(part.ended, "a complete body with an unended part");
  }
  return run;
}

std::string describe(const MultipartRun& run) {
  std::string out = run.ok ? "ok\n" : "error: " + run.error + "\n";
  for (const SeenPart& part : run.parts) {
    out += part.head + "data: " + std::to_string(part.data.size()) + " bytes" + (part.ended ? "" : " (unended)") + "\n";
  }
  return out;
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  const std::optional<SplitInput> input = SplitInput::of(data, size);
  if (!input) return 0;
  MultipartLimits limits;
  if (input->flag_80) limits = MultipartLimits{64, 4};
  std::string_view rest = input->stream;
  const size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) return 0;
  const std::string_view content_type = rest.substr(0, newline);
  const std::string_view body = rest.substr(newline + 1);

  const std::optional<std::string> boundary = backend::MultipartParser::boundaryOf(content_type);
  if (!boundary) return 0;
  FUZZ_CHECK(!boundary->empty() && boundary->size() <= 70, *boundary);

  const MultipartRun whole = parseBody(*boundary, body, {}, limits);
  const MultipartRun split = parseBody(*boundary, body, input->pieces(body.size()), limits);
  const bool same_parts = [&] {
    if (whole.parts.size() != split.parts.size()) return false;
    for (size_t i = 0; i < whole.parts.size(); ++i) {
      const SeenPart& a = whole.parts[i];
      const SeenPart& b = split.parts[i];
      if (a.head != b.head || a.ended != b.ended) return false;
      // Data handed out before an error may stop at a different byte.
      if (whole.ok && a.data != b.data) return false;
    }
    return true;
  }();
  FUZZ_CHECK(whole.ok == split.ok && whole.error == split.error && same_parts,
             "whole:\n" + describe(whole) + "in pieces:\n" + describe(split));
  return 0;
}
