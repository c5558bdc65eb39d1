// stickyproxy end to end at its limits: admission and queueing per worker, upstream and idle
// timeouts, pipelining, refused reloads, routing by the app's cookie, forwarded headers from
// trusted peers, and cookies that are not what they should be.
#include <sys/wait.h>

#include <csignal>

#include <catch2/catch.hpp>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

// Checks each of `outcomes` of requests as one session on `worker`: a response came, a 200 from
// `worker`, or a 503 with Retry-After that came before every 200 did (it did not wait for the
// worker's slot). Returns how many were 200 and how many 503.
std::pair<int, int> checkServedOrRefused(const std::vector<Outcome>& outcomes, const std::string& worker) {
  int ok = 0;
  int refused = 0;
  std::chrono::milliseconds first_served = std::chrono::milliseconds::max();
  for (const Outcome& outcome : outcomes) {
    if (outcome.status == 200) first_served = std::min(first_served, outcome.took);
  }
  for (const Outcome& outcome : outcomes) {
    INFO("status " << outcome.status << " from " << outcome.worker << " after " << outcome.took.count() << " ms "
                   << outcome.error);
    CHECK(outcome.error.empty());
    if (outcome.status == 200) {
      ++ok;
      CHECK(outcome.worker == worker);
    } else if (outcome.status == 503) {
      ++refused;
      CHECK(outcome.retry_after);
      CHECK(outcome.took < first_served);
    }
  }
  return {ok, refused};
}

// Checks that the access log has `count` lines for `path`, every one naming `worker`.
void checkAllLoggedFor(const ProxyUnderTest& proxy, const std::string& path, size_t count, const std::string& worker) {
  std::vector<AccessLogLine> lines = accessLinesFor(proxy, path, count);
  INFO("log:\n" << proxy.logText());
  CHECK(lines.size() == count);
  for (const AccessLogLine& line : lines) CHECK(line.worker == worker);
}

}  // namespace

TEST_CASE("a busy worker queues one request, refuses the next with 503 and Retry-After, and never spills",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3, "test-worker",
                                                      {{"limits.worker_max_in_flight", "1"},
                                                       {"limits.worker_queue", "1"},
                                                       {"timeouts.queue", "2s"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0xad1).front();
  HttpClient client = proxy.client(10s);
  Response owner = asSession(client, key);
  REQUIRE(owner.status == 200);
  const std::string worker = owner.body;

  SECTION("three at once: one runs, one waits its turn, one is refused") {
    // The refusal comes at once: before even the running request is served.
    std::vector<Outcome> outcomes = concurrentRequests(proxy, key, "/delay?ms=1500", 3);
    auto [ok, refused] = checkServedOrRefused(outcomes, worker);
    CHECK(ok == 2);
    CHECK(refused == 1);
    // The refusal was for the session's worker too: no request was tried anywhere else.
    checkAllLoggedFor(proxy, "/delay", 3, worker);
  }

  SECTION("a request queued for longer than timeouts.queue gets 503") {
    // Two 3 s requests: whichever comes second waits for the first, which outlasts the 2 s queue
    // timeout. It is refused once the timeout has passed (not before), while the first still runs.
    std::vector<Outcome> outcomes = concurrentRequests(proxy, key, "/delay?ms=3000", 2);
    auto [ok, timed_out] = checkServedOrRefused(outcomes, worker);
    for (const Outcome& outcome : outcomes) {
      if (outcome.status == 503) CHECK(outcome.took >= 1800ms);
    }
    CHECK(ok == 1);
    CHECK(timed_out == 1);
    checkAllLoggedFor(proxy, "/delay", 2, worker);
  }

  // The worker takes requests again afterwards.
  CHECK(asSession(client, key).status == 200);
}

TEST_CASE("a worker slower than timeouts.upstream_response costs that request a 504, not the session",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3, "test-worker", {{"timeouts.upstream_response", "500ms"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0x504).front();
  HttpClient client = proxy.client(10s);
  Response before = asSession(client, key);
  REQUIRE(before.status == 200);

  const auto sent = std::chrono::steady_clock::now();
  Response slow = asSession(client, key, "/delay?ms=2000");
  const auto took = since(sent);
  INFO("504 after " << took.count() << " ms: " << slow.body);
  // 504 proves the proxy answered before the worker did; it must not have before the timeout.
  CHECK(slow.status == 504);
  CHECK(took >= 450ms);

  Response next = asSession(client, key);
  CHECK(next.status == 200);
  CHECK(next.body == before.body);
  CHECK(next.headerOr("X-Seen-Previous-Worker") == "");
  // With the default access_log = all, every request has its line.
  CHECK(accessLinesFor(proxy, "/whoami", 2).size() == 2);
}

TEST_CASE("access_log = errors logs only the answers the proxy made itself", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(
      2, "test-worker", {{"timeouts.upstream_response", "500ms"}, {"proxy.access_log", "errors"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0xe770).front();
  HttpClient client = proxy.client(10s);
  for (int i = 0; i < 5; ++i) REQUIRE(asSession(client, key).status == 200);
  REQUIRE(asSession(client, key, "/delay?ms=2000").status == 504);
  HttpClient bad = proxy.client(10s);
  bad.sendRaw("GET /no spaces allowed HTTP/1.1\r\nHost: x\r\n\r\n");

  std::vector<AccessLogLine> timed_out = accessLinesFor(proxy, "/delay", 1);
  REQUIRE(timed_out.size() == 1);
  CHECK(timed_out[0].status == 504);
  CHECK(timed_out[0].note.find("upstream") != std::string::npos);
  std::vector<AccessLogLine> refused = accessLinesFor(proxy, "-", 1);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status == 400);
  // The lines above are later than the 200s: had those been written, they would be there.
  CHECK(accessLinesFor(proxy, "/whoami", 0).empty());
}

TEST_CASE("an idle keep-alive connection is closed after timeouts.keepalive_idle, a busy one is not",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"timeouts.keepalive_idle", "500ms"}}));
  proxy.start();

  // Closed once idle for the configured 500 ms (not before), long before the default 75 s.
  HttpClient idle = proxy.client(10s);
  REQUIRE(idle.get("/whoami").status == 200);
  const auto last_response = std::chrono::steady_clock::now();
  CHECK(idle.waitForClose(20s));
  const auto idle_for = since(last_response);
  INFO("closed after " << idle_for.count() << " ms idle");
  CHECK(idle_for >= 400ms);

  // The scenario: a client that sends a request every 100 ms (well within 500 ms) for three
  // idle timeouts, watching its connection for a close in between.
  HttpClient busy = proxy.client(10s);
  for (int request = 0; request < 15; ++request) {
    INFO("request " << request);
    REQUIRE(busy.get("/whoami").status == 200);
    REQUIRE_FALSE(busy.waitForClose(100ms));
  }
  CHECK(busy.connectionsOpened() == 1);
}

TEST_CASE("five pipelined requests on one connection are answered in order", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0x919e).front();
  HttpClient client = proxy.client(10s);

  // Decreasing delays: a proxy that forwarded them side by side would finish the later ones
  // first. The last one echoes its X-Seq back.
  const std::vector<int> delays{300, 200, 100, 0};
  std::string batch;
  for (size_t i = 0; i <= delays.size(); ++i) {
    std::string target = i < delays.size() ? "/delay?ms=" + std::to_string(delays[i]) : "/headers";
    batch += "GET " + target + " HTTP/1.1\r\nHost: pipeline.test\r\nCookie: " + kCookieName + "=" + key +
             "\r\nX-Seq: " + std::to_string(i) + "\r\n\r\n";
  }
  client.sendRaw(batch);

  std::set<std::string> workers;
  for (size_t i = 0; i <= delays.size(); ++i) {
    Response response = client.readResponse();
    INFO("response " << i << ": " << response.status << " " << response.body);
    REQUIRE(response.status == 200);
    workers.insert(response.headerOr("X-Worker"));
    if (i < delays.size()) {
      CHECK(response.body == "delayed " + std::to_string(delays[i]) + " ms\n");
    } else {
      CHECK(response.body.find("X-Seq: " + std::to_string(i) + "\n") != std::string::npos);
    }
  }
  CHECK(workers.size() == 1);
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("a bad config on SIGHUP is refused with the messages of stickyproxy -t, and nothing changes",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3));
  proxy.start();
  HttpClient client = proxy.client(10s);
  const std::vector<std::string> keys = seededSessionKeys(30, 0xbadc);
  std::map<std::string, std::string> first_on = workerOfEach(client, keys);

  proxy.rewriteConfig(ProxyUnderTest::standardConfig(
      3, "test-worker", {{"limits.no_such_limit", "1"}, {"timeouts.queue", "30"}, {"routing.virtual_nodes", "7"}}));
  ChildProcess check({binaryPath("stickyproxy"), "-t", "-c", proxy.configPath()}, proxy.dir().file("check.log"));
  auto check_status = check.waitExit(10s);
  REQUIRE(check_status);
  CHECK(WIFEXITED(*check_status));
  CHECK(WEXITSTATUS(*check_status) == 1);
  std::vector<std::string> problems;
  {
    std::istringstream lines(check.logText());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(proxy.configPath() + ":", 0) == 0) problems.push_back(line);
    }
  }
  INFO("stickyproxy -t:\n" << check.logText());
  REQUIRE(problems.size() == 2);

  proxy.reload();
  REQUIRE(waitUntil([&] { return proxy.logText().find("reload rejected") != std::string::npos; }, 5s));
  const std::string log = proxy.logText();
  INFO("proxy log:\n" << log);
  for (const std::string& problem : problems) {
    INFO("expected in the proxy's log: " << problem);
    CHECK(log.find(" " + problem + "\n") != std::string::npos);
  }

  // Still running on the old configuration: 1024 virtual nodes, so every session stays put.
  CHECK(proxy.running());
  for (const std::string& key : keys) {
    Response response = asSession(client, key);
    REQUIRE(response.status == 200);
    CHECK(response.body == first_on[key]);
  }
}

TEST_CASE("sessions are routed by the app cookie, and Secure and X-Forwarded-For follow trusted_proxies",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3, "test-worker",
                                                      {{"routing.key_source", "app_cookie"},
                                                       {"routing.app_cookie_name", "chatmrpt_session"},
                                                       {"proxy.trusted_proxies", "127.0.0.1"}}));
  proxy.start();

  std::set<std::string> workers_seen;
  for (int session = 0; session < 12; ++session) {
    const std::string app_cookie = "chatmrpt_session=app-session-" + std::to_string(session);
    std::string worker;
    for (int i = 0; i < 10; ++i) {
      HttpClient client = proxy.client(10s);  // a new connection each time, no proxy cookie
      Response response = client.get("/whoami", {{"Cookie", app_cookie}});
      REQUIRE(response.status == 200);
      if (worker.empty()) worker = response.body;
      INFO(app_cookie << " request " << i);
      CHECK(response.body == worker);
      auto minted = response.setCookieValue(kCookieName);
      REQUIRE(minted);
      CHECK(isSessionKey(*minted));
    }
    // The app cookie wins over a proxy cookie that would route elsewhere.
    HttpClient with_both = proxy.client(10s);
    for (const std::string& proxy_key : seededSessionKeys(5, 0xa99 + static_cast<uint64_t>(session))) {
      Response response = with_both.get("/whoami", {{"Cookie", kCookieName + "=" + proxy_key + "; " + app_cookie}});
      REQUIRE(response.status == 200);
      CHECK(response.body == worker);
    }
    workers_seen.insert(worker);
  }
  CHECK(workers_seen.size() > 1);

  HttpClient client = proxy.client(10s);
  auto secure = [](const Response& response) {
    return response.headerOr("Set-Cookie").find("; Secure") != std::string::npos;
  };
  Response https = client.get("/whoami", {{"X-Forwarded-Proto", "https"}});
  REQUIRE(https.status == 200);
  INFO("Set-Cookie: " << https.headerOr("Set-Cookie"));
  CHECK(secure(https));
  Response http = client.get("/whoami", {{"X-Forwarded-Proto", "http"}});
  REQUIRE(http.status == 200);
  CHECK_FALSE(secure(http));
  Response plain = client.get("/whoami");
  REQUIRE(plain.status == 200);
  CHECK_FALSE(secure(plain));
  Response forwarded = client.get("/whoami", {{"X-Forwarded-For", "203.0.113.9"}});
  REQUIRE(forwarded.status == 200);
  CHECK(forwarded.headerOr("X-Seen-Forwarded-For") == "203.0.113.9, 127.0.0.1");

  // The default: no peer is trusted.
  ProxyUnderTest untrusting(ProxyUnderTest::standardConfig(1));
  untrusting.start();
  HttpClient direct = untrusting.client(10s);
  Response claimed = direct.get("/whoami", {{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"}});
  REQUIRE(claimed.status == 200);
  CHECK(claimed.headerOr("X-Seen-Forwarded-For") == "127.0.0.1");
  CHECK(claimed.setCookieValue(kCookieName));
  CHECK_FALSE(secure(claimed));
}

TEST_CASE("a malformed or oversized routing cookie counts as absent: 200 and a fresh cookie", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  HttpClient client = proxy.client(10s);

  const std::vector<std::pair<std::string, std::string>> cases{
      {"not hex", "nothex"},
      {"5000 hex digits", std::string(5000, 'a')},
      {"5000 other characters", std::string(5000, 'z')},
      {"31 hex digits", std::string(31, 'b')},
      {"upper-case hex", std::string(32, 'C')},
  };
  for (const auto& [what, value] : cases) {
    INFO(what);
    Response response = client.get("/whoami", {{"Cookie", "theme=dark; " + kCookieName + "=" + value + "; lang=en"}});
    CHECK(response.status == 200);
    CHECK(response.headerCount("Set-Cookie") == 1);
    auto fresh = response.setCookieValue(kCookieName);
    REQUIRE(fresh);
    CHECK(isSessionKey(*fresh));
    CHECK(*fresh != value);
    // The fresh key routes like any other from now on.
    Response again = asSession(client, *fresh);
    CHECK(again.status == 200);
    CHECK(again.body == response.body);
    CHECK_FALSE(again.setCookieValue(kCookieName));
  }
  CHECK(proxy.running());
}

TEST_CASE("requests in flight and queued for a worker that dies finish on the session's new pin",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3, "test-worker",
                                                      {{"limits.worker_max_in_flight", "1"},
                                                       {"limits.worker_queue", "4"},
                                                       {"timeouts.queue", "20s"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0xdead).front();
  HttpClient client = proxy.client(10s);
  Response owner = asSession(client, key);
  REQUIRE(owner.status == 200);
  const std::string worker = owner.body;

  // One request occupies the worker's only slot, two more wait behind it.
  std::vector<Outcome> outcomes;
  std::thread load([&] { outcomes = concurrentRequests(proxy, key, "/delay?ms=1500", 3); });
  const bool queued = proxy.waitForWorker(
      worker, [](const WorkerStatus& status) { return status.in_flight == 1 && status.queued == 2; });
  const auto killed_at = std::chrono::steady_clock::now();
  std::string kill_error;
  try {
    if (queued) proxy.killWorker(worker);
  } catch (const HarnessError& error) {
    kill_error = error.what();  // reported once the load thread is joined
  }
  load.join();
  REQUIRE(queued);
  REQUIRE(kill_error.empty());
  for (const Outcome& outcome : outcomes) {
    INFO("status " << outcome.status << " from " << outcome.worker << " after " << outcome.took.count() << " ms "
                   << outcome.error << "\nlog:\n" << proxy.logText());
    CHECK(outcome.error.empty());
    CHECK(outcome.status == 200);  // GET /delay is idempotent: retried on the new pin
    CHECK(outcome.worker != worker);
  }
  // None waited for the queue timeout (20 s): the new pin served them one after another.
  CHECK(since(killed_at) < 20s);
}

TEST_CASE("an upload slower than timeouts.upstream_response is not cut: the wait starts when it is sent",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"timeouts.upstream_response", "1s"}}));
  proxy.start();
  HttpClient client = proxy.client(10s);
  constexpr int kPieces = 10;
  const std::string piece(64 * 1024, 'u');
  client.sendRaw("POST /count HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(kPieces * piece.size()) +
                 "\r\n\r\n");
  const auto started = std::chrono::steady_clock::now();
  // The scenario: a client uploading slowly over ~2.5 s. Before each piece it watches for an
  // early answer (a 504 cutting the upload) for 250 ms.
  for (int i = 0; i < kPieces; ++i) {
    INFO("before piece " << i);
    CHECK_FALSE(waitUntil([&] { return client.bytesWaiting() > 0; }, 250ms, 5ms));
    client.sendRaw(piece);
  }
  Response response = client.readResponse();
  INFO("log:\n" << proxy.logText());
  CHECK(since(started) > 2000ms);
  CHECK(response.status == 200);
  CHECK(response.body.find("\"bytes\":" + std::to_string(kPieces * piece.size())) != std::string::npos);
}

TEST_CASE("kept request bodies share limits.retry_buffer_total: one past it streams unkept, and bytes come back",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(
      2, "test-worker", {{"limits.retry_buffer", "800k"}, {"limits.retry_buffer_total", "1m"}}));
  proxy.start();
  const std::string body(700 * 1024, 'u');
  // The first upload is kept until its answer, 2 s after the body arrived.
  std::thread slow([&] {
    HttpClient client = proxy.client(20s);
    Response answer = client.request("POST", "/delay?ms=2000", {}, body);
    CHECK(answer.status == 200);
  });
  REQUIRE(waitUntil([&] { return metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_bytes") >= 700 * 1024; },
                    10s));
  // The second does not fit beside it: it goes through all the same, without a copy.
  HttpClient client = proxy.client(20s);
  Response counted = client.request("POST", "/count", {}, body);
  CHECK(counted.status == 200);
  CHECK(counted.body.find("\"bytes\":" + std::to_string(body.size())) != std::string::npos);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_dropped_total{limit=\"total\"}") == 1);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_dropped_total{limit=\"request\"}") == 0);
  slow.join();
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_bytes", -1) == 0);
  // With the budget free again, the same body is kept.
  CHECK(client.request("POST", "/count", {}, body).status == 200);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_dropped_total{limit=\"total\"}") == 1);
}

TEST_CASE("memory that a burst of kept upload bodies took goes back to the system once it is over",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  const int before_kib = rssKb(proxy.pid());
  REQUIRE(before_kib > 0);
  // Eight 4 MiB uploads kept at once (each until its answer, 1.5 s after its body): 32 MiB.
  const std::string body(4 * 1024 * 1024, 'u');
  std::vector<std::thread> uploads;
  for (int i = 0; i < 8; ++i) {
    uploads.emplace_back([&] {
      HttpClient client = proxy.client(30s);
      CHECK(client.request("POST", "/delay?ms=1500", {}, body).status == 200);
    });
  }
  CHECK(waitUntil([&] { return metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_bytes") >= 24 << 20; }, 20s));
  const int peak_kib = rssKb(proxy.pid());
  CHECK(peak_kib > before_kib + 24 * 1024);
  for (std::thread& upload : uploads) upload.join();
  // The proxy looks every 5 s; glibc alone would keep the freed slabs resident. (A sanitized
  // build's allocator holds freed memory in its quarantine, out of the proxy's reach.)
  if (kBuildSlowdown > 1) return;
  INFO("resident before " << before_kib << " KiB, at the peak " << peak_kib << " KiB, now "
                          << rssKb(proxy.pid()) << " KiB");
  CHECK(waitUntil([&] { return rssKb(proxy.pid()) < before_kib + 8 * 1024; }, 15s));
}

TEST_CASE("with retry_buffer = 0 no body is kept and none is counted as dropped", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker", {{"limits.retry_buffer", "0"}}));
  proxy.start();
  HttpClient client = proxy.client(10s);
  CHECK(client.request("POST", "/count", {}, std::string(100 * 1024, 'u')).status == 200);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_dropped_total{limit=\"request\"}", -1) == 0);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retry_buffer_bytes", -1) == 0);
}
