// The worker binaries on their own, no proxy: stickyproxy-backend's operator routes, and
// test-worker's streaming routes and the HTTP server's protocol behaviour underneath both.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <picojson.h>

#include "tests/integration/asan_quarantine.h"
#include "tests/integration/harness.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// Holds a LoneWorker's temp dir: as its first base, the dir exists before the worker starts in
// it and is removed only after the worker has stopped.
struct OwnTempDir {
  TempDir dir;
};

// A worker binary started on its own, in a temp dir of its own.
class LoneWorker : private OwnTempDir, public WorkerUnderTest {
 public:
  explicit LoneWorker(std::string name, std::vector<std::string> extra_args = {},
                      std::string_view binary = "test-worker")
      : WorkerUnderTest(dir, binary, std::move(name), std::move(extra_args)) {}
};

}  // namespace

TEST_CASE("backend answers /ping and /system-health with its name and pid", "[integration][worker]") {
  LoneWorker backend("w3", {}, "stickyproxy-backend");
  HttpClient client = backend.client();

  Response ping = client.get("/ping");
  CHECK(ping.status == 200);
  CHECK(ping.headerOr("X-Worker") == "w3");
  auto ping_json = parseJsonObject(ping.body);
  CHECK(ping_json["worker"].to_str() == "w3");

  Response health = client.get("/system-health");
  CHECK(health.status == 200);
  CHECK(health.headerOr("X-Worker") == "w3");
  CHECK(health.headerOr("Content-Type").find("application/json") == 0);
  auto health_json = parseJsonObject(health.body);
  REQUIRE(health_json.count("worker") == 1);
  REQUIRE(health_json.count("pid") == 1);
  REQUIRE(health_json.count("uptime_s") == 1);
  REQUIRE(health_json.count("sessions") == 1);
  CHECK(health_json["worker"].to_str() == "w3");
  CHECK(static_cast<pid_t>(health_json["pid"].get<double>()) == backend.pid());
  CHECK(health_json["uptime_s"].get<double>() >= 0.0);
  CHECK(health_json["sessions"].is<double>());

  Response missing = client.get("/no-such-route");
  CHECK(missing.status == 404);
  CHECK(missing.headerOr("X-Worker") == "w3");
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("test-worker marks every response with its name and echoes forwarding headers", "[integration][worker]") {
  LoneWorker worker("w2");
  HttpClient client = worker.client();

  Response ping = client.get("/ping");
  CHECK(ping.status == 200);
  CHECK(ping.headerOr("X-Worker") == "w2");
  CHECK(ping.headerOr("X-Worker-Pid") == std::to_string(worker.pid()));

  Response plain = client.get("/whoami");
  CHECK(plain.status == 200);
  CHECK(plain.body == "w2");
  REQUIRE(plain.header("X-Seen-Previous-Worker"));
  CHECK(plain.headerOr("X-Seen-Previous-Worker", "missing") == "");
  CHECK(plain.headerOr("X-Seen-Forwarded-For", "missing") == "");

  Response forwarded = client.get("/whoami", {{"X-Sticky-Previous-Worker", "w1"},
                                              {"X-Forwarded-For", "10.1.2.3"},
                                              {"X-Forwarded-Proto", "https"},
                                              {"X-Forwarded-Host", "app.example"},
                                              {"Connection", "keep-alive"}});
  CHECK(forwarded.headerOr("X-Seen-Previous-Worker") == "w1");
  CHECK(forwarded.headerOr("X-Seen-Forwarded-For") == "10.1.2.3");
  CHECK(forwarded.headerOr("X-Seen-Forwarded-Proto") == "https");
  CHECK(forwarded.headerOr("X-Seen-Forwarded-Host") == "app.example");
  CHECK(forwarded.headerOr("X-Seen-Connection") == "keep-alive");

  Response missing = client.get("/nope");
  CHECK(missing.status == 404);
  CHECK(missing.headerOr("X-Worker") == "w2");
}

TEST_CASE("test-worker echoes 5 MB bodies, chunked and with Content-Length", "[integration][worker]") {
  LoneWorker worker("w1");
  HttpClient client = worker.client();
  client.setKeepBodies(false);
  const uint64_t size = 5 * kMiB;

  Response chunked = client.uploadPattern("POST", "/echo", size, /*chunked=*/true);
  CHECK(chunked.status == 200);
  CHECK(chunked.chunked);
  CHECK(chunked.headerOr("X-Worker") == "w1");
  CHECK(chunked.body_bytes == size);
  CHECK(chunked.body_fnv == patternFnvHex(size));

  Response sized = client.uploadPattern("POST", "/echo", size, /*chunked=*/false);
  CHECK(sized.status == 200);
  CHECK(sized.body_bytes == size);
  CHECK(sized.body_fnv == patternFnvHex(size));

  client.setKeepBodies(true);
  Response small = client.request("POST", "/echo", {}, "hello, worker");
  CHECK(small.status == 200);
  CHECK(small.body == "hello, worker");
}

TEST_CASE("test-worker counts a streamed 50 MB upload without holding it", "[integration][worker]") {
  WithoutAsanQuarantine no_quarantine;  // the RSS bound is about our memory, not ASan's
  LoneWorker worker("w1");
  HttpClient client = worker.client();
  const uint64_t size = 50 * kMiB;

  Response counted = client.uploadPattern("POST", "/count", size, /*chunked=*/true);
  REQUIRE(counted.status == 200);
  auto json = parseJsonObject(counted.body);
  CHECK(static_cast<uint64_t>(json["bytes"].get<double>()) == size);
  CHECK(json["sha"].to_str() == patternFnvHex(size));

  Response sized = client.uploadPattern("POST", "/count", size, /*chunked=*/false);
  REQUIRE(sized.status == 200);
  auto sized_json = parseJsonObject(sized.body);
  CHECK(static_cast<uint64_t>(sized_json["bytes"].get<double>()) == size);
  CHECK(sized_json["sha"].to_str() == patternFnvHex(size));

  // The body streamed through: the worker never held anything near 50 MB.
  int rss = rssKb(worker.pid());
  INFO("test-worker VmRSS " << rss << " KiB");
  CHECK(rss > 0);
  CHECK(rss < 40 * 1024);
}

TEST_CASE("test-worker streams a large download with backpressure", "[integration][worker]") {
  LoneWorker worker("w1");
  HttpClient client = worker.client();
  client.setKeepBodies(false);
  const uint64_t size = 20 * kMiB + 123;

  Response big = client.get("/big?bytes=" + std::to_string(size));
  CHECK(big.status == 200);
  CHECK(big.headerOr("Content-Length") == std::to_string(size));
  CHECK(big.body_bytes == size);
  CHECK(big.body_fnv == patternFnvHex(size));
}

TEST_CASE("test-worker server-sent events arrive one by one", "[integration][worker]") {
  LoneWorker worker("w1");
  HttpClient client = worker.client();
  Response head = checkEventsArriveAsProduced(client, /*events=*/6, /*interval_ms=*/100);
  CHECK(head.headerOr("X-Worker") == "w1");

  // The connection is still good after the stream.
  CHECK(client.get("/ping").status == 200);
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("test-worker answers pipelined requests in order", "[integration][worker]") {
  LoneWorker worker("w1");
  HttpClient client = worker.client();

  // The slow request goes first: its answer must still come first.
  client.sendRaw(
      "GET /delay?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /delay?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n");
  Response first = client.readResponse();
  Response second = client.readResponse();
  Response third = client.readResponse();
  CHECK(first.status == 200);
  CHECK(first.body == "delayed 200 ms\n");
  CHECK(second.status == 200);
  CHECK(second.body == "delayed 1 ms\n");
  CHECK(third.status == 200);
  CHECK(third.body == "w1");
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("test-worker reuses a kept-alive connection", "[integration][worker]") {
  LoneWorker worker("w1");
  HttpClient client = worker.client();

  Response first = client.get("/whoami");
  Response second = client.get("/ping");
  CHECK(first.status == 200);
  CHECK(second.status == 200);
  CHECK_FALSE(first.closesConnection());
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("malformed request gets 400 and the worker keeps serving", "[integration][worker]") {
  LoneWorker worker("w1");

  HttpClient bad = worker.client();
  bad.sendRaw("GET /ping HTTP/1.1\r\nHost: t\r\nthis line has no colon\r\n\r\n");
  Response rejected = bad.readResponse();
  CHECK(rejected.status == 400);
  CHECK(rejected.closesConnection());
  CHECK(bad.waitForClose(5s));

  HttpClient garbage = worker.client();
  garbage.sendRaw("\x16\x03\x01 not http at all\r\n\r\n");
  CHECK(garbage.readResponse().status == 400);

  HttpClient good = worker.client();
  CHECK(good.get("/ping").status == 200);
  CHECK(worker.process().running());
}

TEST_CASE("oversized head gets 431 and too long a request line gets 414", "[integration][worker]") {
  LoneWorker worker("w1");

  HttpClient big_header = worker.client();
  Response head_too_large = big_header.get("/ping", {{"X-Filler", std::string(40 * 1024, 'h')}});
  CHECK(head_too_large.status == 431);
  CHECK(head_too_large.closesConnection());

  HttpClient many_headers = worker.client();
  Headers fields;
  for (int i = 0; i < 150; ++i) fields.emplace_back("X-Field-" + std::to_string(i), "v");
  CHECK(many_headers.get("/ping", fields).status == 431);

  HttpClient long_line = worker.client();
  Response uri_too_long = long_line.get("/" + std::string(9 * 1024, 'u'));
  CHECK(uri_too_long.status == 414);

  HttpClient after = worker.client();
  CHECK(after.get("/ping").status == 200);
}

TEST_CASE("a request head that stalls gets 408 after the header timeout", "[integration][worker]") {
  LoneWorker worker("w1", {"--header-timeout-ms", "300"});

  HttpClient slow = worker.client(5s);
  auto started = std::chrono::steady_clock::now();
  slow.sendRaw("GET /ping HTTP/1.1\r\nHost: t\r\nX-Half: ");
  Response timed_out = slow.readResponse();
  auto waited = since(started);
  INFO("408 after " << waited.count() << " ms");
  CHECK(timed_out.status == 408);
  CHECK(waited.count() >= 250);
  CHECK(waited.count() < 3000);

  HttpClient after = worker.client();
  CHECK(after.get("/ping").status == 200);
}

TEST_CASE("test-worker /crash and /exit-after end the process", "[integration][worker]") {
  {
    LoneWorker worker("crashy");
    HttpClient client = worker.client(5s);
    client.sendRaw("GET /crash HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(client.waitForClose(5s));
    auto status = worker.process().waitExit(5s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 3);
  }
  {
    LoneWorker worker("leaving");
    HttpClient client = worker.client(5s);
    Response answer = client.get("/exit-after?ms=100");
    CHECK(answer.status == 200);
    auto status = worker.process().waitExit(5s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
  }
}
