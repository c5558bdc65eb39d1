// [compression] through the real proxy: what the client accepts and the worker did not compress
// leaves gzipped, streamed, and inflates to exactly what the worker sent; everything else goes
// as the worker made it.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/http/gzip_encoder.h"
#include "tests/integration/body_pattern.h"
#include "tests/integration/harness.h"

using namespace stickyproxy::integration;
using namespace std::chrono_literals;

namespace {

std::string inflated(const Response& response) {
  std::string out;
  REQUIRE(stickyproxy::gunzip(response.body, &out));
  return out;
}

ProxyUnderTest compressingProxy(const std::string& level = "1") {
  return ProxyUnderTest(ProxyUnderTest::standardConfig(1, "test-worker",
                                                       {{"compression.enabled", "yes"},
                                                        {"compression.min_size", "1k"},
                                                        {"compression.level", level},
                                                        {"compression.types", "text/html, image/svg+xml"}}));
}

}  // namespace

TEST_CASE("a listed type the client accepts leaves gzipped and chunked, and inflates to the worker's bytes",
          "[integration][proxy][compression]") {
  ProxyUnderTest proxy = compressingProxy();
  proxy.start();
  HttpClient client = proxy.client(20s);
  const Headers gzip{{"Accept-Encoding", "gzip, deflate, br"}};

  // Large enough for many deflate blocks and for backpressure on the way.
  Response big = client.get("/big?bytes=3000000&type=text/html;%20charset=utf-8", gzip);
  REQUIRE(big.status == 200);
  CHECK(big.headerOr("Content-Encoding") == "gzip");
  CHECK(big.headerOr("Vary").find("Accept-Encoding") != std::string::npos);
  CHECK_FALSE(big.header("Content-Length"));
  CHECK(big.chunked);
  CHECK(big.body.size() < 3000000 / 4);
  CHECK(inflated(big) == patternText(0, 3000000));

  // The same connection serves on: the gzip stream ended where the chunked body did.
  Response svg = client.get("/big?bytes=5000&type=image/svg+xml", gzip);
  CHECK(svg.headerOr("Content-Encoding") == "gzip");
  CHECK(inflated(svg) == patternText(0, 5000));
}

TEST_CASE("level 0 (one pass, fixed codes) streams bodies that inflate to the worker's bytes, one after another",
          "[integration][proxy][compression]") {
  ProxyUnderTest proxy = compressingProxy("0");
  proxy.start();
  HttpClient client = proxy.client(20s);
  const Headers gzip{{"Accept-Encoding", "gzip"}};
  for (uint64_t bytes : {3000000u, 70000u, 1500u}) {
    INFO(bytes);
    Response response = client.get("/big?bytes=" + std::to_string(bytes) + "&type=text/html", gzip);
    REQUIRE(response.status == 200);
    CHECK(response.headerOr("Content-Encoding") == "gzip");
    CHECK(response.body.size() < bytes);
    CHECK(inflated(response) == patternText(0, bytes));
  }
}

TEST_CASE("what the client does not accept, other types, small bodies, HEAD and event streams go as they are",
          "[integration][proxy][compression]") {
  ProxyUnderTest proxy = compressingProxy();
  proxy.start();
  HttpClient client = proxy.client(20s);

  auto plain = [&](const std::string& target, const Headers& headers, uint64_t length) {
    INFO(target);
    Response response = client.get(target, headers);
    CHECK(response.status == 200);
    CHECK_FALSE(response.header("Content-Encoding"));
    CHECK(response.headerOr("Content-Length") == std::to_string(length));
    CHECK(response.body == patternText(0, length));
  };
  plain("/big?bytes=20000&type=text/html", {}, 20000);                                    // no Accept-Encoding
  plain("/big?bytes=20000&type=text/html", {{"Accept-Encoding", "gzip;q=0, br"}}, 20000);   // gzip refused
  plain("/big?bytes=20000&type=application/octet-stream", {{"Accept-Encoding", "gzip"}}, 20000);  // not listed
  plain("/big?bytes=900&type=text/html", {{"Accept-Encoding", "gzip"}}, 900);               // under min_size

  Response head = client.request("HEAD", "/big?bytes=20000&type=text/html", {{"Accept-Encoding", "gzip"}});
  CHECK(head.status == 200);
  CHECK_FALSE(head.header("Content-Encoding"));

  // Events reach the client one by one, never held back in a deflate block.
  client.startStream("GET", "/sse?events=3&interval_ms=50", {{"Accept-Encoding", "gzip"}});
  int events = 0;
  while (client.nextEvent()) ++events;
  CHECK(events == 3);
}

TEST_CASE("[compression] keys are checked: types, level and sizes", "[integration][proxy][compression]") {
  ProxyUnderTest bad(ProxyUnderTest::standardConfig(1, "test-worker",
                                                    {{"compression.enabled", "maybe"},
                                                     {"compression.types", "text, image/svg+xml"},
                                                     {"compression.level", "12"}}));
  int status = runProxyToExit({"-t", "-c", bad.configPath()}, bad.logPath());
  const std::string log = bad.logText();
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(log.find("compression.enabled") != std::string::npos);
  CHECK(log.find("\"text\" is not a media type") != std::string::npos);
  CHECK(log.find("compression.level") != std::string::npos);
}
