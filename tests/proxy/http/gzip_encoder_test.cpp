#include "proxy/http/gzip_encoder.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/proxy/http/gzip_test_support.h"

using namespace stickyproxy;
using stickyproxy::testing::gunzip;
using stickyproxy::testing::pageLikeText;

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

namespace {

// The calling thread's kept zlib states, all freed: a test starts from none.
void freeKeptStreams() { GzipEncoder::freeIdleStreams(std::chrono::steady_clock::now() + std::chrono::hours(1)); }

// `body` through deflateInto() with `room` bytes of output room a step, then the end.
std::string stepThrough(GzipEncoder& encoder, std::string_view body, size_t room) {
  std::string out;
  std::vector<char> buffer(room);
  for (bool finish : {false, true}) {
    GzipEncoder::Step step;
    do {
      step = encoder.deflateInto(&body, finish, buffer.data(), room);
      REQUIRE(step.ok);
      out.append(buffer.data(), step.written);
    } while (step.more);
    CHECK(body.empty());
  }
  return out;
}

std::string compressWith(GzipEncoder& encoder, std::string_view body) {
  std::string out;
  REQUIRE(encoder.feed(body, &out));
  REQUIRE(encoder.finish(&out));
  return out;
}

}  // namespace

TEST_CASE("two bodies in a row go through one kept zlib state and inflate byte for byte", "[http][gzip]") {
  freeKeptStreams();
  const std::string first = pageLikeText(70000);
  const std::string second = pageLikeText(3000) + "and a different end";
  const uint64_t made = GzipEncoder::streamsMade();
  std::string first_gz;
  {
    GzipEncoder encoder(1);
    first_gz = compressWith(encoder, first);
  }
  CHECK(GzipEncoder::keptStreams() == 1);
  std::string second_gz;
  {
    GzipEncoder encoder(1);
    CHECK(GzipEncoder::keptStreams() == 0);  // taken, not made
    second_gz = compressWith(encoder, second);
    CHECK(encoder.bytesIn() == second.size());
    CHECK(encoder.bytesOut() == second_gz.size());
  }
  CHECK(GzipEncoder::streamsMade() == made + 1);
  CHECK(gunzip(first_gz) == first);
  CHECK(gunzip(second_gz) == second);
}

TEST_CASE("a state dropped mid-stream is kept clean: the next body comes out as from a new one", "[http][gzip]") {
  freeKeptStreams();
  const std::string body = pageLikeText(40000);
  {
    GzipEncoder abandoned(1);
    std::string out;
    REQUIRE(abandoned.feed(std::string_view(body).substr(0, 25000), &out));  // header and blocks out, no finish
  }
  REQUIRE(GzipEncoder::keptStreams() == 1);
  const uint64_t made = GzipEncoder::streamsMade();
  GzipEncoder reused(1);
  GzipEncoder fresh(1);  // nothing left to take: a new state
  CHECK(GzipEncoder::streamsMade() == made + 1);
  const std::string reused_gz = compressWith(reused, body);
  CHECK(reused_gz == compressWith(fresh, body));
  CHECK(gunzip(reused_gz) == body);
}

TEST_CASE("states of different levels are never mixed", "[http][gzip]") {
  freeKeptStreams();
  const std::string body = pageLikeText(50000);
  { GzipEncoder level1(1); }
  const uint64_t made = GzipEncoder::streamsMade();
  GzipEncoder level9(9);
  CHECK(GzipEncoder::streamsMade() == made + 1);
  CHECK(GzipEncoder::keptStreams() == 1);  // the level 1 state waits for a level 1 body
  const std::string level9_gz = compressWith(level9, body);
  GzipEncoder level1(1);
  CHECK(GzipEncoder::streamsMade() == made + 1);
  const std::string level1_gz = compressWith(level1, body);
  CHECK(level9_gz.size() < level1_gz.size());
  CHECK(gunzip(level9_gz) == body);
  CHECK(gunzip(level1_gz) == body);
}

TEST_CASE("a thread keeps at most kMaxKeptStreams idle states and frees those idle too long", "[http][gzip]") {
  freeKeptStreams();
  {
    std::vector<std::unique_ptr<GzipEncoder>> at_once;
    for (size_t i = 0; i < GzipEncoder::kMaxKeptStreams + 5; ++i) at_once.push_back(std::make_unique<GzipEncoder>(1));
  }
  CHECK(GzipEncoder::keptStreams() == GzipEncoder::kMaxKeptStreams);
  const auto now = std::chrono::steady_clock::now();
  CHECK(GzipEncoder::freeIdleStreams(now) == 0);
  CHECK(GzipEncoder::freeIdleStreams(now + GzipEncoder::kKeptIdle) == GzipEncoder::kMaxKeptStreams);
  CHECK(GzipEncoder::keptStreams() == 0);

  // Another thread's states are its own, freed when it ends (LeakSanitizer sees the rest).
  size_t kept_there = 0;
  std::thread other([&kept_there] {
    { GzipEncoder encoder(1); }
    kept_there = GzipEncoder::keptStreams();
  });
  other.join();
  CHECK(kept_there == 1);
  CHECK(GzipEncoder::keptStreams() == 0);
}

TEST_CASE("deflateInto fills small buffers a step at a time and ends the stream once", "[http][gzip]") {
  freeKeptStreams();
  const std::string body = pageLikeText(30000);
  GzipEncoder encoder(1);
  const std::string out = stepThrough(encoder, body, 100);
  CHECK(encoder.finished());
  std::string_view none;
  char buffer[100];
  const GzipEncoder::Step step = encoder.deflateInto(&none, true, buffer, sizeof buffer);
  CHECK((step.ok && step.written == 0 && !step.more));
  CHECK(gunzip(out) == body);
}

TEST_CASE("level 0 inflates whole from any pieces and any room, text or not", "[http][gzip]") {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    // Text that repeats (matches near and far), bytes that do not, and runs longer than a match.
    std::string body;
    uint32_t state = seed;
    const size_t size = seed % 8 == 0 ? seed / 8 : (seed * 48271u) % 300000;
    while (body.size() < size) {
      state = state * 1664525u + 1013904223u;
      if (seed % 3 == 0) {
        body += static_cast<char>(state >> 24);
      } else if (seed % 3 == 1) {
        body += pageLikeText(1 + state % 3000, state);
      } else {
        body.append(1 + state % 700, static_cast<char>('a' + state % 3));
      }
    }
    body.resize(size);

    GzipEncoder encoder(GzipEncoder::kFastLevel);
    std::string out;
    size_t fed = 0;
    size_t piece = 1 + seed;
    while (fed < body.size()) {
      const size_t take = std::min(piece, body.size() - fed);
      REQUIRE(encoder.feed(std::string_view(body).substr(fed, take), &out));
      fed += take;
      piece = piece * 5 + 3;
      if (piece > 200000) piece = seed;
    }
    REQUIRE(encoder.finish(&out));
    CHECK(encoder.bytesIn() == body.size());
    CHECK(encoder.bytesOut() == out.size());
    CHECK(gunzip(out) == body);

    // The smallest room a step takes.
    GzipEncoder stepper(GzipEncoder::kFastLevel);
    const std::string stepped = stepThrough(stepper, body, GzipEncoder::kMinStepRoom);
    CHECK(stepper.finished());
    CHECK(gunzip(stepped) == body);
  }
}

TEST_CASE("level 0 takes no zlib state and costs about a third more bytes than level 1 on a page", "[http][gzip]") {
  const std::string body = pageLikeText(64 * 1024);
  const uint64_t made = GzipEncoder::streamsMade();
  const std::string fast = GzipEncoder::compress(body, GzipEncoder::kFastLevel);
  CHECK(GzipEncoder::streamsMade() == made);
  CHECK(fast.substr(0, 3) == "\x1f\x8b\x08");
  CHECK(gunzip(fast) == body);
  const std::string level1 = GzipEncoder::compress(body, 1);
  CHECK(fast.size() < body.size() / 2);
  CHECK(fast.size() < level1.size() * 3 / 2);
  CHECK(gunzip(GzipEncoder::compress("", GzipEncoder::kFastLevel)) == std::string());
}
