#include "backend/app/multipart_parser.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using namespace stickyproxy;
using namespace stickyproxy::backend;

namespace {

struct Collected {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
  bool ended = false;
};

struct Collector : MultipartParser::Handler {
  std::vector<Collected> parts;
  size_t data_calls = 0;
  std::string reject_name;
  bool onPartBegin(const MultipartParser::Part& part) override {
    if (part.name == reject_name) {
      reject_reason = "unexpected field " + part.name;
      return false;
    }
    parts.push_back({part.name, part.filename, part.content_type, "", false});
    return true;
  }
  bool onPartData(const Bytes& data) override {
    ++data_calls;
    parts.back().data.append(data.data, data.size);
    return true;
  }
  bool onPartEnd() override {
    parts.back().ended = true;
    return true;
  }
};

const std::string kBoundary = "----sp7MA4YWxkTrZu0gW";

std::string body(const std::string& csv, const std::string& zip) {
  return "--" + kBoundary + "\r\n" +
         "Content-Disposition: form-data; name=\"csv_file\"; filename=\"wards.csv\"\r\n"
         "Content-Type: text/csv\r\n\r\n" +
         csv + "\r\n--" + kBoundary + "\r\n" +
         "Content-Disposition: form-data; name=\"shapefile\"; filename=\"wards \\\"x\\\".zip\"\r\n"
         "Content-Type: application/zip\r\n\r\n" +
         zip + "\r\n--" + kBoundary + "\r\n" + "Content-Disposition: form-data; name=\"note\"\r\n\r\n" + "hello" +
         "\r\n--" + kBoundary + "--\r\nepilogue is ignored";
}

// Feeds `text` in pieces of `piece` bytes.
bool feedInPieces(MultipartParser& parser, const std::string& text, size_t piece) {
  for (size_t at = 0; at < text.size(); at += piece) {
    if (!parser.feed(Bytes::copyOf(std::string_view(text).substr(at, piece)))) return false;
  }
  return parser.finish();
}

}  // namespace

TEST_CASE("the boundary comes from a multipart/form-data content type only", "[app][multipart]") {
  CHECK(MultipartParser::boundaryOf("multipart/form-data; boundary=abc123") == "abc123");
  CHECK(MultipartParser::boundaryOf("Multipart/Form-Data; charset=utf-8; boundary=\"a b'c\"") == "a b'c");
  CHECK_FALSE(MultipartParser::boundaryOf("multipart/mixed; boundary=abc"));
  CHECK_FALSE(MultipartParser::boundaryOf("multipart/form-data"));
  CHECK_FALSE(MultipartParser::boundaryOf("multipart/form-data; boundary="));
  CHECK_FALSE(MultipartParser::boundaryOf("multipart/form-data; boundary=" + std::string(71, 'a')));
  CHECK_FALSE(MultipartParser::boundaryOf("multipart/form-data; boundary=a\r\nb"));
}

TEST_CASE("parts arrive with names, filenames and exact data whatever the piece size", "[app][multipart]") {
  // Data that contains near-boundaries: CRLF, "--", and a prefix of the delimiter.
  std::string csv = "WardName,WardCode\r\nA,NI01\r\n--" + kBoundary.substr(0, 10) + "\r\nB,NI02\r\n\r\n-";
  std::string zip;
  std::mt19937 random(42);
  for (int i = 0; i < 5000; ++i) zip.push_back(static_cast<char>(random() & 0xff));
  std::string text = body(csv, zip);
  for (size_t piece : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(41), size_t(64), size_t(1000), text.size()}) {
    Collector collector;
    MultipartParser parser(kBoundary, &collector);
    INFO("piece size " << piece);
    REQUIRE(feedInPieces(parser, text, piece));
    REQUIRE(collector.parts.size() == 3);
    CHECK(collector.parts[0].name == "csv_file");
    CHECK(collector.parts[0].filename == "wards.csv");
    CHECK(collector.parts[0].content_type == "text/csv");
    CHECK(collector.parts[0].data == csv);
    CHECK(collector.parts[1].filename == "wards \"x\".zip");
    CHECK(collector.parts[1].data == zip);
    CHECK(collector.parts[2].name == "note");
    CHECK_FALSE(collector.parts[2].filename.has_value());
    CHECK(collector.parts[2].content_type == "text/plain");
    CHECK(collector.parts[2].data == "hello");
    for (const Collected& part : collector.parts) CHECK(part.ended);
  }
}

TEST_CASE("large part data is handed on as views of the input, not copied byte by byte", "[app][multipart]") {
  std::string big(1 << 20, 'z');
  std::string text = body(big, "zip");
  Collector collector;
  MultipartParser parser(kBoundary, &collector);
  REQUIRE(feedInPieces(parser, text, 64 * 1024));
  CHECK(collector.parts[0].data.size() == big.size());
  CHECK(collector.data_calls < 60);  // about one call per 64 KiB piece
}

TEST_CASE("a preamble is skipped and an empty part head is allowed", "[app][multipart]") {
  std::string text = "this is a preamble\r\n--" + kBoundary + "\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--" +
                     kBoundary + "--";
  Collector collector;
  MultipartParser parser(kBoundary, &collector);
  REQUIRE(feedInPieces(parser, text, 5));
  REQUIRE(collector.parts.size() == 1);
  CHECK(collector.parts[0].data == "1");

  Collector no_head;
  MultipartParser headless(kBoundary, &no_head);
  headless.feed(Bytes::copyOf("--" + kBoundary + "\r\n\r\nx\r\n--" + kBoundary + "--"));
  CHECK_FALSE(headless.finish());  // a part needs Content-Disposition with a name
  CHECK(headless.error() == "part without Content-Disposition: form-data");
}

TEST_CASE("malformed and truncated bodies are refused with a reason", "[app][multipart]") {
  struct Case {
    std::string text;
    std::string error;
  };
  std::vector<Case> cases = {
      {"--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunfinished", "body ended before the closing boundary"},
      {"--" + kBoundary + "\r\nNo colon here\r\n\r\nx\r\n--" + kBoundary + "--", "malformed part header"},
      {"--" + kBoundary + "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--" + kBoundary + "--",
       "part without Content-Disposition: form-data"},
      {"--" + kBoundary + "\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nx\r\n--" + kBoundary + "--",
       "part without a name"},
      {"--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--" + kBoundary + "--",
       "malformed Content-Disposition"},
      {"--" + kBoundary + "garbage\r\n", "malformed boundary line"},
      {"--" + kBoundary + "\r\nX: " + std::string(20000, 'h') + "\r\n\r\n", "part head too large"},
      {"no boundary at all", "body ended before the closing boundary"},
  };
  for (const Case& c : cases) {
    Collector collector;
    MultipartParser parser(kBoundary, &collector);
    bool ok = parser.feed(Bytes::copyOf(c.text)) && parser.finish();
    INFO(c.text.substr(0, 120));
    CHECK_FALSE(ok);
    CHECK(parser.error() == c.error);
  }
}

TEST_CASE("a handler can refuse a part and the parser stops", "[app][multipart]") {
  Collector collector;
  collector.reject_name = "shapefile";
  MultipartParser parser(kBoundary, &collector);
  CHECK_FALSE(parser.feed(Bytes::copyOf(body("a,b\r\n", "zip"))));
  CHECK(parser.error() == "unexpected field shapefile");
  CHECK(collector.parts.size() == 1);
  CHECK_FALSE(parser.feed(Bytes::copyOf("more")));
}

TEST_CASE("the number of parts is bounded", "[app][multipart]") {
  std::string text;
  for (int i = 0; i < 5; ++i) text += "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nv\r\n";
  text += "--" + kBoundary + "--";
  Collector collector;
  MultipartParser parser(kBoundary, &collector, MultipartLimits{16 * 1024, 3});
  CHECK_FALSE(parser.feed(Bytes::copyOf(text)));
  CHECK(parser.error() == "too many parts");
}

TEST_CASE("a part head at the size limit is accepted or refused the same wherever the body is split",
          "[app][multipart]") {
  const MultipartLimits limits{64, 8};
  const std::string disposition = "Content-Disposition: form-data; name=\"a\"";
  // Heads one byte under, at and one byte over the limit (the head without its blank line).
  for (size_t head_size : {limits.max_part_head_bytes - 1, limits.max_part_head_bytes, limits.max_part_head_bytes + 1}) {
    const std::string head = disposition + "\r\nX: " + std::string(head_size - disposition.size() - 5, 'h');
    REQUIRE(head.size() == head_size);
    const std::string text = "--" + kBoundary + "\r\n" + head + "\r\n\r\nvalue\r\n--" + kBoundary + "--\r\n";
    Collector whole_collector;
    MultipartParser whole(kBoundary, &whole_collector, limits);
    const bool whole_ok = whole.feed(Bytes::copyOf(text)) && whole.finish();
    CHECK(whole_ok == (head_size <= limits.max_part_head_bytes));
    for (size_t cut = 1; cut < text.size(); ++cut) {
      Collector collector;
      MultipartParser parser(kBoundary, &collector, limits);
      const std::string_view view(text);
      const bool ok = parser.feed(Bytes::copyOf(view.substr(0, cut))) && parser.feed(Bytes::copyOf(view.substr(cut))) &&
                      parser.finish();
      INFO("head of " << head_size << " bytes, cut after byte " << cut);
      CHECK(ok == whole_ok);
      CHECK(parser.error() == whole.error());
      CHECK(collector.parts.size() == whole_collector.parts.size());
    }
  }
}
