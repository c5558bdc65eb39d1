// stickyproxy end to end: the real binary, supervising real test-worker processes, driven over
// loopback. Each test writes its own config (ProxyUnderTest::standardConfig) in a temp dir.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/asan_quarantine.h"
#include "tests/integration/harness.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
struct Session {
  std::string key;
  std::string worker;
};

// A new session: a request without the cookie, answered with a Set-Cookie.
Session newSession(HttpClient& client) {
  Response response = client.get("/whoami");
  INFO("status " << response.status << ", body " << response.body);
  REQUIRE(response.status == 200);
  auto key = response.setCookieValue(kCookieName);
  REQUIRE(key);
  return Session{*key, response.body};
}

}  // namespace

TEST_CASE("a new session gets a cookie and reaches the same worker for 1000 requests", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client();
  client.useCookieJar();

  Response first = client.get("/whoami");
  REQUIRE(first.status == 200);
  auto key = first.setCookieValue(kCookieName);
  REQUIRE(key);
  INFO("Set-Cookie: " << first.headerOr("Set-Cookie"));
  CHECK(isSessionKey(*key));
  CHECK(first.headerCount("Set-Cookie") == 1);
  const std::string worker = first.body;
  CHECK(first.headerOr("X-Worker") == worker);

  int elsewhere = 0;
  int other_cookie = 0;
  for (int i = 0; i < 1000; ++i) {
    Response response = client.get("/whoami");
    REQUIRE(response.status == 200);
    if (response.body != worker) ++elsewhere;
    auto again = response.setCookieValue(kCookieName);
    if (again && *again != *key) ++other_cookie;
  }
  CHECK(elsewhere == 0);
  CHECK(other_cookie == 0);
  CHECK(client.cookie(kCookieName) == key);
  CHECK(client.connectionsOpened() == 1);

  // The key, not the connection, decides: a new connection with the cookie lands there too.
  HttpClient other = proxy.client();
  Response from_elsewhere = asSession(other, *key);
  CHECK(from_elsewhere.body == worker);
  CHECK_FALSE(from_elsewhere.setCookieValue(kCookieName));
}

TEST_CASE("200 new sessions spread over all four workers", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client();

  std::map<std::string, int> per_worker;
  std::set<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    Session session = newSession(client);
    CHECK(isSessionKey(session.key));
    keys.insert(session.key);
    ++per_worker[session.worker];
  }
  CHECK(keys.size() == 200);
  REQUIRE(per_worker.size() == 4);
  for (const auto& [worker, count] : per_worker) {
    INFO(worker << " got " << count << " of 200 sessions");
    CHECK(count >= 15);
  }
}

TEST_CASE("killed worker's sessions move, are announced once, and stay moved after restart", "[integration][proxy]") {
  // Sessions move on their first request while their worker is down: it stays down for 2 s before
  // its restart, time enough for all of them to ask, even on a slow (sanitized) build.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(4, "test-worker", {{"supervisor.restart_backoff_initial", "2s"}}));
  proxy.start();
  HttpClient client = proxy.client(10s);

  std::vector<Session> sessions;
  for (int i = 0; i < 120; ++i) sessions.push_back(newSession(client));
  const std::string victim = sessions.front().worker;
  Response victim_answer = asSession(client, sessions.front().key);
  const pid_t victim_pid = std::stoi(victim_answer.headerOr("X-Worker-Pid", "0"));
  INFO("victim " << victim << " pid " << victim_pid);
  REQUIRE(victim_pid > 0);
  auto children = proxy.childPids();
  REQUIRE(std::count(children.begin(), children.end(), victim_pid) == 1);
  size_t victim_sessions = 0;
  for (const Session& session : sessions) victim_sessions += session.worker == victim ? 1 : 0;
  REQUIRE(victim_sessions >= 3);

  // Killed by pid; the proxy has seen the exit when this returns.
  REQUIRE(proxy.killSessionWorker(sessions.front().key) == victim);
  REQUIRE_FALSE(processExists(victim_pid));

  // The first of the victim's sessions is the probe: it is served elsewhere (a connection that
  // went with the worker is retried). The others have not been asked since the kill.
  std::string probe_worker;
  REQUIRE(waitUntil(
      [&] {
        try {
          Response response = asSession(client, sessions.front().key);
          if (response.status == 200 && response.body != victim) probe_worker = response.body;
        } catch (const HarnessError&) {
          client.close();  // the connection may have gone with the worker's; try a new one
        }
        return !probe_worker.empty();
      },
      10s));

  std::map<std::string, std::string> now_on;  // key -> worker after the move
  now_on[sessions.front().key] = probe_worker;
  for (size_t i = 1; i < sessions.size(); ++i) {
    const Session& session = sessions[i];
    Response response = asSession(client, session.key);
    INFO("session " << i << " was on " << session.worker << ", status " << response.status);
    REQUIRE(response.status == 200);
    now_on[session.key] = response.body;
    if (session.worker == victim) {
      CHECK(response.body != victim);
      CHECK(response.headerOr("X-Seen-Previous-Worker") == victim);
    } else {
      CHECK(response.body == session.worker);  // survivors' sessions do not move
      CHECK(response.headerOr("X-Seen-Previous-Worker") == "");
    }
  }
  // Announced once only.
  for (const Session& session : sessions) {
    Response response = asSession(client, session.key);
    CHECK(response.body == now_on[session.key]);
    CHECK(response.headerOr("X-Seen-Previous-Worker") == "");
  }

  // The supervisor restarts the victim; once it takes new sessions again...
  REQUIRE(proxy.waitForWorkerState(victim, "ready"));
  CHECK(proxy.workerStatus(victim).pid != victim_pid);
  REQUIRE(waitUntil([&] { return newSession(client).worker == victim; }, 10s));
  // ...the moved sessions still stay where they went.
  CHECK(sessionsElsewhere(client, now_on) == 0);
}

TEST_CASE("the proxy sets X-Forwarded-* itself and strips client routing headers", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client();

  // 127.0.0.1 is not a trusted proxy here, so what the client claims is replaced.
  Response response = client.get("/whoami", {{"X-Forwarded-For", "10.9.9.9"},
                                             {"X-Forwarded-Proto", "https"},
                                             {"X-Sticky-Previous-Worker", "w9"}});
  REQUIRE(response.status == 200);
  CHECK(response.headerOr("X-Seen-Forwarded-For") == "127.0.0.1");
  CHECK(response.headerOr("X-Seen-Forwarded-Proto") == "http");
  CHECK(response.headerOr("X-Seen-Forwarded-Host") == "127.0.0.1:" + std::to_string(proxy.port()));
  CHECK(response.headerOr("X-Seen-Previous-Worker") == "");

  // Hop-by-hop fields, including those the client's Connection names, stop at the proxy.
  Response headers = client.get("/headers", {{"Connection", "keep-alive, X-Hop-Secret"}, {"X-Hop-Secret", "1"},
                                             {"X-End-To-End", "2"}});
  REQUIRE(headers.status == 200);
  INFO("upstream saw:\n" << headers.body);
  CHECK(headers.body.find("X-Hop-Secret") == std::string::npos);
  CHECK(headers.body.find("X-End-To-End: 2") != std::string::npos);
}

TEST_CASE("malformed and oversized requests get 400, 408, 413, 414 and 431 and the proxy keeps serving",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(4, "test-worker", {{"limits.max_body", "1m"},
                                                                         {"timeouts.client_header", "1s"}}));
  proxy.start();

  HttpClient malformed = proxy.client(10s);
  malformed.sendRaw("GET /whoami HTTP/1.1\r\nHost: t\r\nno colon in this line\r\n\r\n");
  Response bad = malformed.readResponse();
  CHECK(bad.status == 400);
  CHECK(malformed.waitForClose(5s));

  HttpClient long_line = proxy.client(10s);
  CHECK(long_line.get("/" + std::string(9 * 1024, 'u')).status == 414);

  HttpClient big_head = proxy.client(10s);
  CHECK(big_head.get("/whoami", {{"X-Filler", std::string(40 * 1024, 'h')}}).status == 431);

  HttpClient many_fields = proxy.client(10s);
  Headers fields;
  for (int i = 0; i < 150; ++i) fields.emplace_back("X-Field-" + std::to_string(i), "v");
  CHECK(many_fields.get("/whoami", fields).status == 431);

  HttpClient too_big = proxy.client(10s);
  Response declared = too_big.uploadPattern("POST", "/count", 2 * kMiB, /*chunked=*/false);
  CHECK(declared.status == 413);
  Response chunked = too_big.uploadPattern("POST", "/count", 2 * kMiB, /*chunked=*/true);
  CHECK(chunked.status == 413);
  Response within = too_big.uploadPattern("POST", "/count", kMiB / 2, /*chunked=*/true);
  CHECK(within.status == 200);

  HttpClient stalled = proxy.client(10s);
  auto started = std::chrono::steady_clock::now();
  stalled.sendRaw("GET /whoami HTTP/1.1\r\nHost: t\r\nX-Half: ");
  Response timed_out = stalled.readResponse();
  auto waited = since(started);
  INFO("408 after " << waited.count() << " ms");
  CHECK(timed_out.status == 408);
  CHECK(waited.count() >= 800);
  CHECK(waited.count() < 5000);

  HttpClient after = proxy.client();
  CHECK(after.get("/whoami").status == 200);
  CHECK(proxy.running());
}

TEST_CASE("server-sent events pass through the proxy as they are produced", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client(10s);
  checkEventsArriveAsProduced(client, /*events=*/6, /*interval_ms=*/150);
}

TEST_CASE("200 MB uploads stream through the proxy with RSS growth under 32 MB", "[integration][proxy]") {
  WithoutAsanQuarantine no_quarantine;  // the RSS bound is about our memory, not ASan's
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client();
  client.useCookieJar();
  const uint64_t size = 200 * kMiB;
  REQUIRE(client.get("/ping").status == 200);
  const int baseline = rssKb(proxy.pid());
  REQUIRE(baseline > 0);

  client.setKeepBodies(true);
  Response counted = client.uploadPattern("POST", "/count", size, /*chunked=*/true);
  REQUIRE(counted.status == 200);
  Response sized = client.uploadPattern("POST", "/count", size, /*chunked=*/false);
  REQUIRE(sized.status == 200);
  for (const Response* response : {&counted, &sized}) {
    auto json = parseJsonObject(response->body);
    CHECK(static_cast<uint64_t>(json["bytes"].get<double>()) == size);
    CHECK(json["sha"].to_str() == patternFnvHex(size));
  }
  client.setKeepBodies(false);
  Response echoed = client.uploadPattern("POST", "/echo", size, /*chunked=*/false);
  REQUIRE(echoed.status == 200);
  CHECK(echoed.body_bytes == size);
  CHECK(echoed.body_fnv == patternFnvHex(size));

  const int peak = peakRssKb(proxy.pid());
  INFO("proxy VmRSS before " << baseline << " KiB, VmHWM after " << peak << " KiB");
  CHECK(peak - baseline < 32 * 1024);
}

TEST_CASE("SIGHUP under traffic drops nothing and moves no session", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(4));
  proxy.start();

  // Sessions the reloads must not move: each client below is one, and so is each tracked key.
  HttpClient checker = proxy.client(10s);
  const std::map<std::string, std::string> tracked = workerOfEach(checker, seededSessionKeys(100, 0x516e));

  const int kClients = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> completed{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<int> worker_changes(kClients, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client = proxy.client(10s);
      client.useCookieJar();
      std::string worker;
      for (int i = 0; !stop; ++i) {
        // Some requests are slow, so reloads land while they are in flight.
        std::string path = i % 5 == 0 ? "/delay?ms=50" : "/whoami";
        try {
          Response response = client.get(path);
          if (response.status != 200) {
            std::lock_guard lock(failures_mutex);
            failures.push_back(path + " -> " + std::to_string(response.status));
            continue;
          }
          std::string answered_by = response.headerOr("X-Worker");
          if (worker.empty()) worker = answered_by;
          if (answered_by != worker) ++worker_changes[static_cast<size_t>(t)];
          ++completed;
        } catch (const HarnessError& error) {
          std::lock_guard lock(failures_mutex);
          failures.push_back(path + " -> " + error.what());
        }
      }
    });
  }
  auto progress = [&](int more) {
    int target = completed + more;
    return waitUntil([&] { return completed >= target; }, 15s);
  };
  bool flowing = progress(100);

  // A fifth worker joins: every ring owner that changes hands to w5 would move its session, so
  // the live ones are pinned where they are; only new sessions follow the new ring.
  proxy.rewriteConfig(ProxyUnderTest::standardConfig(5));
  proxy.reload();
  CHECK(proxy.waitForWorkerState("w5", "ready"));
  if (flowing) flowing = progress(100);
  INFO("proxy log:\n" << fileTail(proxy.logPath()));
  CHECK(sessionsElsewhere(checker, tracked) == 0);
  // Some tracked sessions had w5 as their new ring owner: they are the pinned ones.
  picojson::object sessions = parseJsonObject(proxy.adminCommand("show sessions json"));
  CHECK(sessions["moved_total"].get<double>() >= 1);
  // The new ring is in use: new sessions reach w5.
  CHECK(waitUntil(
      [&] {
        HttpClient fresh = proxy.client(10s);  // a new connection, no cookie: a new session
        return fresh.get("/whoami").body == "w5";
      },
      10s));

  // w5 leaves again (no tracked session is on it) in a file that changes a timeout too.
  proxy.rewriteConfig(ProxyUnderTest::standardConfig(4, "test-worker", {{"timeouts.upstream_response", "20s"}}));
  proxy.reload();
  CHECK(waitUntil(
      [&] {
        try {
          std::vector<WorkerStatus> workers = proxy.workerStatuses();
          return std::none_of(workers.begin(), workers.end(), [](const WorkerStatus& w) { return w.name == "w5"; });
        } catch (const HarnessError&) {
          return false;
        }
      },
      10s));
  if (flowing) flowing = progress(100);
  CHECK(sessionsElsewhere(checker, tracked) == 0);
  stop = true;
  for (auto& thread : threads) thread.join();

  CHECK(flowing);
  INFO("completed " << completed.load() << " requests");
  for (const std::string& failure : failures) UNSCOPED_INFO("failure: " << failure);
  CHECK(failures.empty());
  for (int t = 0; t < kClients; ++t) CHECK(worker_changes[static_cast<size_t>(t)] == 0);
  CHECK(proxy.running());
}

TEST_CASE("a request whose worker dies under it is replayed once on the session's new worker, and both restart",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  HttpClient client = proxy.client(10s);
  client.useCookieJar();
  Response before = client.get("/whoami");
  REQUIRE(before.status == 200);
  const std::string crashed = before.headerOr("X-Worker");
  const pid_t crashed_pid = std::stoi(before.headerOr("X-Worker-Pid", "0"));

  // /crash kills whichever worker gets it: the replay on the session's new worker dies too, and
  // the request then gets 502 (a request is replayed once, not round the ring).
  Response crash = client.get("/crash");
  CHECK(crash.status == 502);
  std::vector<AccessLogLine> lines = accessLinesFor(proxy, "/crash", 1);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].worker != crashed);
  CHECK(lines[0].previous_worker == crashed);  // the replay was announced there
  const std::string second = lines[0].worker;
  // Both restarted: new processes, counted as restarts, and ready again.
  REQUIRE(proxy.waitForWorker(crashed, [&](const WorkerStatus& worker) {
    return worker.restarts == 1 && worker.state == "ready" && worker.pid != crashed_pid;
  }));
  REQUIRE(proxy.waitForWorkerState(second, "ready"));
  CHECK(proxy.workerStatus(second).restarts == 1);
  CHECK(waitUntil([&] { return proxy.childPids().size() == 4; }, 10s));
  Response after = client.get("/whoami");
  CHECK(after.status == 200);
  CHECK(proxy.running());
}

TEST_CASE("SIGTERM stops the proxy and every worker it started", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig());
  proxy.start();
  auto workers = proxy.childPids();
  CHECK(workers.size() == 4);

  HttpClient client = proxy.client();
  REQUIRE(client.get("/whoami").status == 200);  // a pooled upstream connection exists

  auto started = std::chrono::steady_clock::now();
  int status = proxy.stop(15s);
  auto took = since(started);
  INFO("proxy " << describeWaitStatus(status) << " " << took.count() << " ms after SIGTERM; log:\n"
                << fileTail(proxy.logPath()));
  // Idle, it has nothing to wait for: well within supervisor.stop_grace (3 s) plus slack.
  CHECK(took < 5s);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(proxy.leftoverWorkers().empty());
  for (pid_t worker : workers) CHECK_FALSE(processExists(worker));
}

TEST_CASE("a worker connection paused for a slow client serves the next request once the response is done",
          "[integration]") {
  // The proxy stops reading a worker while its client lags (backpressure). When the rest of the
  // response was already read, the response completes while paused: the connection must read
  // again before it goes back to the pool, or the next request's answer is never seen (504).
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(
      1, "test-worker", {{"timeouts.upstream_response", "5s"}, {"limits.write_buffer_high", "16k"}}));
  proxy.start();
  HttpClient client = proxy.client(10s);
  client.setReceiveBuffer(4096);
  for (size_t size = 256 * 1024; size <= 2 * 1024 * 1024; size += 97 * 1024) {
    INFO("response of " << size << " bytes");
    client.sendRaw("GET /big?bytes=" + std::to_string(size) + " HTTP/1.1\r\nHost: t\r\n\r\n");
    // The client reads nothing until its buffer is full: the proxy is then pausing the worker.
    CHECK(waitUntil([&] { return client.bytesWaiting() >= 2048; }, 5s));
    Response big = client.readResponse();
    REQUIRE(big.status == 200);
    CHECK(big.body_bytes == size);
    Response next = client.get("/whoami");
    CHECK(next.status == 200);
  }
}
