// Sessions under the faults operators meet (issue 9): forged cookies, bursts of connect errors
// against a live worker, a worker killed under a request, reloads that change a worker, and
// shutdowns in the middle of all that. Real proxy, real test-workers, loopback only.
#include <catch2/catch.hpp>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/proxy_scenarios.h"
#include "tests/integration/routing_cookies.h"

using namespace stickyproxy;
using namespace stickyproxy::integration;

namespace {

// A session of our own making: a known key, signed, answered once so the proxy knows it.
struct Session {
  std::string cookie;
  std::string worker;
};

Session newSession(HttpClient& client) {
  client.clearCookies();
  client.useCookieJar();
  Response first = client.get("/whoami");
  REQUIRE(first.status == 200);
  Session session{*client.cookie(kCookieName), first.headerOr("X-Worker")};
  client.useCookieJar(false);
  return session;
}

Response asCookie(HttpClient& client, const std::string& cookie, const std::string& path = "/whoami") {
  return client.get(path, {{"Cookie", kCookieName + "=" + cookie}});
}

// `count` sessions on each worker named in `workers` (made by asking as fresh sessions).
std::vector<Session> sessionsOn(HttpClient& client, const std::set<std::string>& workers, size_t count) {
  std::vector<Session> sessions;
  std::map<std::string, size_t> per_worker;
  for (int tries = 0; tries < 2000; ++tries) {
    Session session = newSession(client);
    if (workers.count(session.worker) == 0 || per_worker[session.worker] >= count) continue;
    ++per_worker[session.worker];
    sessions.push_back(session);
    if (sessions.size() == count * workers.size()) break;
  }
  REQUIRE(sessions.size() == count * workers.size());
  return sessions;
}

std::string randomHex(std::mt19937_64& random, size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < digits; ++i) out.push_back(kHex[random() % 16]);
  return out;
}

size_t movedKeysOnDisk(const ProxyUnderTest& proxy) {
  std::string text = readFile(proxy.dir().file("state/moved-keys.json"));
  return countOccurrences(text, "\"key_hash\"");
}

}  // namespace

TEST_CASE("forged and unsigned cookies while a worker hangs leave nothing saved and are counted",
          "[integration][session-safety]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  HttpClient client = proxy.client(10s);
  Session real = newSession(client);
  REQUIRE(asCookie(client, real.cookie).status == 200);  // now the proxy knows it

  pid_t hung = proxy.workerStatus("w1").pid;
  ::kill(hung, SIGSTOP);
  REQUIRE(proxy.waitForWorkerState("w1", "down"));
  // The real session makes a request meanwhile: if it lived on w1, it moves to w2, announced.
  Response during = asCookie(client, real.cookie);
  CHECK(during.headerOr("X-Worker") == "w2");
  CHECK(during.headerOr("X-Seen-Previous-Worker") == (real.worker == "w1" ? "w1" : ""));
  std::mt19937_64 random(9);
  int answered = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string key = randomHex(random, 32);
    std::string forged = i % 2 == 0 ? key : key + ".w1.1" + randomHex(random, 7) + "." + randomHex(random, 32);
    Response response = asCookie(client, forged);
    answered += response.status == 200;
    CHECK(response.headerOr("X-Worker") == "w2");
  }
  CHECK(answered == 1500);
  ::kill(hung, SIGCONT);
  REQUIRE(proxy.waitForWorkerState("w1", "ready"));

  // The real session stays where it is, and is the only one remembered.
  CHECK(asCookie(client, real.cookie).headerOr("X-Worker") == "w2");
  CHECK(waitUntil([&] { return metricValue(proxy.metricsPort(), "stickyproxy_moved_sessions") <= 1; }, 5s));
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_tracked_sessions") <= 1);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_cookies_refused_total{reason=\"forged_cookie\"}") == 750);
  CHECK(waitUntil([&] { return movedKeysOnDisk(proxy) <= 1; }, 5s));
}

TEST_CASE("a burst of connect failures against a live worker is retried and moves nobody",
          "[integration][session-safety]") {
  // Probes every 2 s and 3 failures to fall: the burst below lasts far less than that.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(
      2, "test-worker",
      {{"health_check.interval", "2s"}, {"health_check.fall", "3"}, {"timeouts.upstream_connect", "10s"},
       {"limits.upstream_idle_per_worker", "0"}}));
  proxy.start();
  HttpClient setup = proxy.client(10s);
  std::vector<Session> sessions = sessionsOn(setup, {"w2"}, 8);
  for (const Session& session : sessions) REQUIRE(asCookie(setup, session.cookie).status == 200);

  // The socket disappears for a moment: every connect gets ENOENT while the process lives.
  const std::string socket = proxy.dir().file("w2.sock");
  std::filesystem::rename(socket, socket + ".away");
  std::vector<std::thread> users;
  std::atomic<int> ok{0};
  std::atomic<int> on_w2{0};
  for (const Session& session : sessions) {
    users.emplace_back([&, session] {
      HttpClient client = proxy.client(20s);
      Response response = asCookie(client, session.cookie);
      ok += response.status == 200;
      on_w2 += response.headerOr("X-Worker") == "w2" && response.headerOr("X-Seen-Previous-Worker").empty();
    });
  }
  bool burst = waitUntil(
      [&] { return metricValue(proxy.metricsPort(), "stickyproxy_upstream_connect_errors_total{worker=\"w2\"}") >= 8; },
      5s);
  std::filesystem::rename(socket + ".away", socket);
  for (std::thread& user : users) user.join();
  REQUIRE(burst);
  CHECK(ok == 8);
  CHECK(on_w2 == 8);
  CHECK(proxy.workerStatus("w2").state == "ready");
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_repins_total{reason=\"unhealthy\"}") == 0);
  CHECK(countOccurrences(proxy.logText(), "worker w2 is down") == 0);
}

TEST_CASE("a request in flight when its worker is killed is replayed on the session's new worker, announced",
          "[integration][session-safety]") {
  SECTION("retry_non_idempotent = on_worker_exit: the POST and its body go to the new worker") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.retry_non_idempotent", "on_worker_exit"}}));
    proxy.start();
    HttpClient client = proxy.client(20s);
    Session session = newSession(client);
    std::string body(200 * 1024, 'x');
    Response response;
    std::thread request([&] {
      response = client.request("POST", "/delay?ms=1500", {{"Cookie", kCookieName + "=" + session.cookie}}, body);
    });
    REQUIRE(proxy.waitForWorker(session.worker, [](const WorkerStatus& w) { return w.in_flight == 1; }));
    proxy.killWorker(session.worker);
    request.join();
    CHECK(response.status == 200);
    CHECK(response.headerOr("X-Worker") != session.worker);
    // The replay carried the announcement, and the re-issued cookie pins the new worker.
    std::vector<AccessLogLine> lines = accessLinesFor(proxy, "/delay", 1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].previous_worker == session.worker);
    CHECK(pinOfCookie(response.setCookieValue(kCookieName).value_or("")) == response.headerOr("X-Worker"));
    CHECK(metricValue(proxy.metricsPort(), "stickyproxy_retries_total{cause=\"worker_exit\"}") == 1);
  }
  SECTION("retry_non_idempotent = never: the POST gets 502") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.retry_non_idempotent", "never"}}));
    proxy.start();
    HttpClient client = proxy.client(20s);
    Session session = newSession(client);
    Response response;
    std::thread request([&] {
      response = client.request("POST", "/delay?ms=1500", {{"Cookie", kCookieName + "=" + session.cookie}}, "abc");
    });
    REQUIRE(proxy.waitForWorker(session.worker, [](const WorkerStatus& w) { return w.in_flight == 1; }));
    proxy.killWorker(session.worker);
    request.join();
    CHECK(response.status == 502);
  }
}

TEST_CASE("a reload that changes a worker's environment restarts it in place: its requests wait, nobody moves",
          "[integration][session-safety]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  HttpClient setup = proxy.client(10s);
  std::vector<Session> sessions = sessionsOn(setup, {"w1", "w2"}, 4);
  for (const Session& session : sessions) REQUIRE(asCookie(setup, session.cookie).status == 200);
  const pid_t old_pid = proxy.workerStatus("w2").pid;

  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::atomic<int> moved{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> users;
  for (const Session& session : sessions) {
    users.emplace_back([&, session] {
      HttpClient client = proxy.client(20s);
      while (!stop) {
        Response response = asCookie(client, session.cookie);
        if (response.status != 200) ++failed;
        if (response.headerOr("X-Worker") != session.worker) ++moved;
        ++answered;
      }
    });
  }
  REQUIRE(waitUntil([&] { return answered > 100; }, 10s));
  proxy.rewriteConfig(ProxyUnderTest::standardConfig(2, "test-worker", {{"worker w2.env", "RELOADED=1"}}));
  proxy.reload();
  bool restarted = proxy.waitForWorker("w2", [&](const WorkerStatus& w) {
    return w.state == "ready" && w.pid != 0 && w.pid != old_pid;
  }, 15s);
  int after_restart = answered;
  REQUIRE(waitUntil([&] { return answered > after_restart + 100; }, 10s));
  stop = true;
  for (std::thread& user : users) user.join();
  CHECK(restarted);
  CHECK(failed == 0);
  CHECK(moved == 0);
  CHECK(countOccurrences(proxy.logText(), "restarted in place") == 1);
  CHECK(countOccurrences(proxy.logText(), " prev=") == 0);
}

TEST_CASE("an external worker's new address is used only once it answers", "[integration][session-safety]") {
  TempDir workers_dir;
  WorkerUnderTest old_w1(workers_dir, "test-worker", "w1-old");
  auto external = [&](uint16_t port) {
    return ProxyUnderTest::standardConfig(
        0, "test-worker",
        {{"worker w1.address", "127.0.0.1:" + std::to_string(port)}, {"health_check.interval", "100ms"}});
  };
  ProxyUnderTest proxy(external(old_w1.port()));
  proxy.start();
  HttpClient client = proxy.client(10s);
  CHECK(client.get("/whoami").headerOr("X-Worker") == "w1-old");

  uint16_t new_port = freePort();
  proxy.rewriteConfig(external(new_port));
  proxy.reload();
  // Nothing listens there yet: the old address keeps serving.
  REQUIRE(waitUntil([&] { return countOccurrences(proxy.logText(), "once that answers its health check") == 1; }, 5s));
  for (int i = 0; i < 20; ++i) CHECK(client.get("/whoami").headerOr("X-Worker") == "w1-old");
  CHECK(proxy.workerStatus("w1").state == "ready");

  WorkerUnderTest new_w1(workers_dir, "test-worker", "w1-new", new_port, {});
  CHECK(waitUntil([&] { return client.get("/whoami").headerOr("X-Worker") == "w1-new"; }, 5s));
}

TEST_CASE("SIGTERM closes the event loop cleanly with exchanges live, during a reload restart and during ctl restart",
          "[integration][session-safety]") {
  auto expectCleanExit = [](ProxyUnderTest& proxy) {
    int status = proxy.stop(20s);
    INFO(fileTail(proxy.logPath()));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(countOccurrences(proxy.logText(), "event loop not empty") == 0);
  };
  SECTION("requests in flight and a stream open") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
    proxy.start();
    std::thread slow([&] {
      HttpClient client = proxy.client(20s);
      try {
        client.get("/delay?ms=1000");
      } catch (const HarnessError&) {
      }
    });
    HttpClient streaming = proxy.client(20s);
    streaming.startStream("GET", "/sse?events=100&interval_ms=100");
    REQUIRE(waitUntil([&] { return metricValue(proxy.metricsPort(), "stickyproxy_client_connections") >= 2; }, 5s));
    expectCleanExit(proxy);
    slow.join();
  }
  SECTION("a reload's restart in place under way") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
    proxy.start();
    proxy.rewriteConfig(ProxyUnderTest::standardConfig(2, "test-worker", {{"worker w1.env", "RELOADED=1"}}));
    proxy.reload();
    REQUIRE(waitUntil([&] { return countOccurrences(proxy.logText(), "restarts with its new") == 1; }, 5s));
    expectCleanExit(proxy);
  }
  SECTION("ctl restart under way") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
    proxy.start();
    // A stream open on w1 holds its drain (nothing in flight is a drain's first condition), so the
    // restart stays in "draining" however slow the build, until SIGTERM ends it.
    std::optional<HttpClient> streaming;
    for (int attempt = 0; attempt < 64 && !streaming; ++attempt) {
      HttpClient client = proxy.client(20s);
      client.useCookieJar();
      Response answer = client.get("/whoami");
      REQUIRE(answer.status == 200);
      if (answer.body == "w1") streaming.emplace(std::move(client));
    }
    REQUIRE(streaming);
    Response head = streaming->startStream("GET", "/sse?events=200&interval_ms=100");
    REQUIRE(head.status == 200);
    REQUIRE(head.headerOr("X-Worker") == "w1");
    AdminClient admin(proxy.adminSocketPath());
    admin.sendRaw("restart w1 60\n");
    if (!proxy.waitForWorkerState("w1", "draining")) FAIL("w1 was not seen draining; log:\n" << fileTail(proxy.logPath()));
    expectCleanExit(proxy);
  }
}
