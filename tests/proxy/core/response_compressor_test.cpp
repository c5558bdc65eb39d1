#include "proxy/core/response_compressor.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/proxy/http/gzip_test_support.h"

using namespace stickyproxy;

namespace {

CompressionConfig enabled() {
  CompressionConfig config;
  config.enabled = true;
  return config;
}

RequestHead get(std::string accept_encoding = "gzip") {
  RequestHead request;
  request.method = "GET";
  request.target = "/map";
  if (!accept_encoding.empty()) request.headers.add("Accept-Encoding", std::move(accept_encoding));
  return request;
}

ResponseHead ok(std::string type, uint64_t length = 50000) {
  ResponseHead response;
  response.headers.add("Content-Type", std::move(type));
  response.headers.add("Content-Length", std::to_string(length));
  response.framing.content_length = length;
  return response;
}

}  // namespace

TEST_CASE("each reason not to compress is named", "[compression]") {
  CompressionConfig config = enabled();
  CHECK(ResponseCompressor::skipReason(config, get(), ok("text/html; charset=utf-8")) == "");
  CHECK(ResponseCompressor::skipReason(CompressionConfig{}, get(), ok("text/html")) == "disabled");
  RequestHead head_request = get();
  head_request.method = "HEAD";
  CHECK(ResponseCompressor::skipReason(config, head_request, ok("text/html")) == "HEAD");
  for (int status : {101, 204, 206, 304, 404, 500}) {
    ResponseHead response = ok("text/html");
    response.status = status;
    CHECK(ResponseCompressor::skipReason(config, get(), response) == "status");
  }
  CHECK(ResponseCompressor::skipReason(config, get(""), ok("text/html")) == "client");
  CHECK(ResponseCompressor::skipReason(config, get("gzip;q=0"), ok("text/html")) == "client");
  ResponseHead encoded = ok("text/html");
  encoded.headers.add("Content-Encoding", "br");
  CHECK(ResponseCompressor::skipReason(config, get(), encoded) == "encoded");
  ResponseHead no_transform = ok("text/html");
  no_transform.headers.add("Cache-Control", "private, no-transform");
  CHECK(ResponseCompressor::skipReason(config, get(), no_transform) == "no-transform");
  CHECK(ResponseCompressor::skipReason(config, get(), ok("image/png")) == "type");
  CHECK(ResponseCompressor::skipReason(config, get(), ok("TEXT/CSV")) == "");
  CHECK(ResponseCompressor::skipReason(config, get(), ok("text/html", 1023)) == "small");
  config.types.push_back("text/event-stream");  // listed or not, events are never held back
  CHECK(ResponseCompressor::skipReason(config, get(), ok("text/event-stream")) == "event stream");
  ResponseHead empty = ok("text/html", 0);
  CHECK(ResponseCompressor::skipReason(config, get(), empty) == "no body");
  ResponseHead chunked = ok("text/html");
  chunked.headers.remove("Content-Length");
  chunked.framing.content_length.reset();
  chunked.framing.chunked = true;  // length unknown: compressed
  CHECK(ResponseCompressor::skipReason(config, get(), chunked) == "");
}

TEST_CASE("the rewritten head names gzip, varies on Accept-Encoding and weakens the ETag", "[compression]") {
  ResponseHead response = ok("image/svg+xml");
  response.headers.add("Vary", "Cookie");
  response.headers.add("ETag", "\"abc\"");
  SlabPool slabs;
  auto compressor = ResponseCompressor::start(enabled(), get(), &response, &slabs);
  REQUIRE(compressor);
  CHECK(response.headers.find("Content-Length") == nullptr);
  CHECK_FALSE(response.framing.content_length);
  CHECK(*response.headers.find("Content-Encoding") == "gzip");
  CHECK(*response.headers.find("Vary") == "Cookie, Accept-Encoding");
  CHECK(*response.headers.find("ETag") == "W/\"abc\"");

  std::string body(200000, 'x');
  for (size_t i = 0; i < body.size(); i += 7) body[i] = static_cast<char>('a' + i % 26);
  std::string out;
  auto append = [&out](Bytes bytes) { out.append(bytes.view()); };
  for (size_t at = 0; at < body.size(); at += 30000) REQUIRE(compressor->feed(Bytes::copyOf(body.substr(at, 30000)), append));
  REQUIRE(compressor->finish(append));
  std::string back;
  REQUIRE(gunzip(out, &back));
  CHECK(back == body);
  CHECK(compressor->bytesIn() == body.size());
  CHECK(compressor->bytesOut() == out.size());
}

TEST_CASE("at most max_streams compress at once; the rest go as they are", "[compression]") {
  CompressionConfig config = enabled();
  config.max_streams = 2;
  SlabPool slabs;
  std::vector<std::unique_ptr<ResponseCompressor>> held;
  const size_t before = ResponseCompressor::active();
  for (int i = 0; i < 2; ++i) {
    ResponseHead response = ok("text/html");
    held.push_back(ResponseCompressor::start(config, get(), &response, &slabs));
    REQUIRE(held.back());
  }
  ResponseHead third = ok("text/html");
  CHECK_FALSE(ResponseCompressor::start(config, get(), &third, &slabs));
  CHECK(third.headers.find("Content-Encoding") == nullptr);  // untouched
  held.pop_back();
  ResponseHead fourth = ok("text/html");
  CHECK(ResponseCompressor::start(config, get(), &fourth, &slabs));
  held.clear();
  CHECK(ResponseCompressor::active() == before);
}

TEST_CASE("output views held by the caller are never written over; the slab is reused once they are gone",
          "[compression]") {
  for (uint32_t level : {1u, 0u}) {
    INFO("level " << level);
    CompressionConfig config = enabled();
    config.level = level;
    SlabPool slabs;
    const std::string body = testing::pageLikeText(400000, 7);
    std::vector<Bytes> held;  // as a write the kernel did not take would hold them
    {
      ResponseHead response = ok("text/html", body.size());
      auto compressor = ResponseCompressor::start(config, get(), &response, &slabs);
      REQUIRE(compressor);
      auto hold = [&held](Bytes bytes) { held.push_back(std::move(bytes)); };
      for (size_t at = 0; at < body.size(); at += 65536) {
        REQUIRE(compressor->feed(Bytes::copyOf(std::string_view(body).substr(at, 65536)), hold));
      }
      REQUIRE(compressor->finish(hold));
    }
    std::string out;
    for (const Bytes& bytes : held) out.append(bytes.view());
    std::string back;
    REQUIRE(gunzip(out, &back));
    CHECK(back == body);

    // Sent at once (nothing held): every run of output starts at the same slab's start.
    held.clear();
    ResponseHead response = ok("text/html", body.size());
    auto compressor = ResponseCompressor::start(config, get(), &response, &slabs);
    REQUIRE(compressor);
    std::string sent;
    const char* first_at = nullptr;
    bool always_there = true;
    auto send = [&](Bytes bytes) {
      if (first_at == nullptr) first_at = bytes.data;
      always_there = always_there && bytes.data == first_at;
      sent.append(bytes.view());
    };
    for (size_t at = 0; at < body.size(); at += 65536) {
      REQUIRE(compressor->feed(Bytes::copyOf(std::string_view(body).substr(at, 65536)), send));
    }
    REQUIRE(compressor->finish(send));
    CHECK(always_there);
    REQUIRE(gunzip(sent, &back));
    CHECK(back == body);
  }
}

TEST_CASE("responses compressed one after another, one of them cut mid-body, each inflate to their own body",
          "[compression]") {
  SlabPool slabs;
  GzipEncoder::freeIdleStreams(std::chrono::steady_clock::now() + std::chrono::hours(1));
  const uint64_t made = GzipEncoder::streamsMade();
  const size_t active = ResponseCompressor::active();
  for (uint32_t round = 0; round < 6; ++round) {
    const std::string body = testing::pageLikeText(20000 + round * 9000, round);
    ResponseHead response = ok("text/html", body.size());
    auto compressor = ResponseCompressor::start(enabled(), get(), &response, &slabs);
    REQUIRE(compressor);
    std::string out;
    auto append = [&out](Bytes bytes) { out.append(bytes.view()); };
    if (round % 3 == 1) {  // the client went away half way: dropped without finish()
      REQUIRE(compressor->feed(Bytes::copyOf(std::string_view(body).substr(0, body.size() / 2)), append));
      continue;
    }
    REQUIRE(compressor->feed(Bytes::copyOf(body), append));
    REQUIRE(compressor->finish(append));
    std::string back;
    REQUIRE(gunzip(out, &back));
    CHECK(back == body);
  }
  CHECK(GzipEncoder::streamsMade() == made + 1);  // one zlib state served them all
  CHECK(ResponseCompressor::active() == active);
}
