#include "proxy/http/gzip_encoder.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "tests/proxy/http/gzip_test_support.h"

using namespace stickyproxy;
using stickyproxy::testing::gunzip;

namespace {

// Text a map page could hold, not one repeated byte: seeded, so the test is the same every run.
std::string pageLikeText(size_t bytes) {
  std::string text;
  uint32_t state = 12345;
  while (text.size() < bytes) {
    state = state * 1664525u + 1013904223u;
    text += "<use href=\"#w" + std::to_string(state % 4000) + "\" fill=\"#" + std::to_string(state % 999983) + "\"/>\n";
  }
  text.resize(bytes);
  return text;
}

}  // namespace

TEST_CASE("a body fed in one piece inflates back to itself", "[http][gzip]") {
  const std::string body = pageLikeText(50000);
  GzipEncoder encoder;
  std::string out;
  REQUIRE(encoder.feed(body, &out));
  REQUIRE(encoder.finish(&out));
  CHECK(encoder.finished());
  CHECK(out.substr(0, 2) == "\x1f\x8b");  // the gzip magic
  CHECK(out.size() < body.size() / 3);
  CHECK(encoder.bytesIn() == body.size());
  CHECK(encoder.bytesOut() == out.size());
  CHECK(gunzip(out) == body);
  CHECK(GzipEncoder::compress(body) == out);
}

TEST_CASE("an empty body is still a whole gzip stream", "[http][gzip]") {
  GzipEncoder encoder;
  std::string out;
  REQUIRE(encoder.feed("", &out));
  REQUIRE(encoder.finish(&out));
  CHECK(out.size() >= 18);  // header and trailer
  CHECK(gunzip(out) == std::string());
  std::string more;
  CHECK(encoder.finish(&more));  // a second finish adds nothing
  CHECK(more.empty());
  CHECK_FALSE(encoder.feed("late", &more));
  CHECK(gunzip(GzipEncoder::compress("")) == std::string());
}

TEST_CASE("a large body fed in uneven pieces streams out as it goes and inflates whole", "[http][gzip]") {
  const std::string body = pageLikeText(8 << 20);
  GzipEncoder encoder(1);
  std::string out;
  size_t fed = 0;
  size_t piece = 1;
  size_t feeds_with_output = 0;
  while (fed < body.size()) {
    const size_t take = std::min(piece, body.size() - fed);
    const size_t before = out.size();
    REQUIRE(encoder.feed(std::string_view(body).substr(fed, take), &out));
    if (out.size() > before) ++feeds_with_output;
    fed += take;
    piece = piece * 3 + 7;
    if (piece > 300000) piece = 5;
  }
  // Output leaves while input is still coming: the encoder does not hold the body.
  CHECK(feeds_with_output > 10);
  REQUIRE(encoder.finish(&out));
  CHECK(gunzip(out) == body);
}

TEST_CASE("Accept-Encoding takes gzip only when its q-value allows it", "[http][gzip]") {
  CHECK(acceptsGzip("gzip"));
  CHECK(acceptsGzip("gzip, deflate, br"));
  CHECK(acceptsGzip("br;q=1.0, GZIP;q=0.5"));
  CHECK(acceptsGzip("x-gzip"));
  CHECK(acceptsGzip(" deflate ,gzip ; q=0.001"));
  CHECK(acceptsGzip("*"));
  CHECK(acceptsGzip("br, *;q=0.1"));
  CHECK_FALSE(acceptsGzip(""));
  CHECK_FALSE(acceptsGzip("identity"));
  CHECK_FALSE(acceptsGzip("deflate, br"));
  CHECK_FALSE(acceptsGzip("gzip;q=0"));
  CHECK_FALSE(acceptsGzip("gzip;q=0.000"));
  CHECK_FALSE(acceptsGzip("gzip; Q=0.0, deflate"));
  CHECK_FALSE(acceptsGzip("gzip;q=0, *"));  // gzip named and refused: "*" does not bring it back
  CHECK_FALSE(acceptsGzip("*;q=0"));
  CHECK_FALSE(acceptsGzip("gzip;q=2"));      // not a q-value
  CHECK_FALSE(acceptsGzip("gzip;q=0.5x"));
  CHECK_FALSE(acceptsGzip("gzipped"));
  CHECK(acceptsGzip("gzip;level=1"));        // other parameters do not matter
  const std::string header = "gzip";
  CHECK(acceptsGzip(&header));
  CHECK_FALSE(acceptsGzip(static_cast<const std::string*>(nullptr)));
}
