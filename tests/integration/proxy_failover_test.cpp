// stickyproxy end to end when workers fail: external workers killed and restarted, two proxy
// instances agreeing on routes, moved keys surviving a proxy restart, no live worker at all,
// and what the logs say (and never say) about sessions meanwhile.
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <picojson.h>
#include <regex>
#include <set>

#include "tests/integration/harness.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

// test-worker processes w1..wN that no proxy started, each on a free port of its own.
struct ExternalWorkers {
  explicit ExternalWorkers(int count) {
    for (int i = 1; i <= count; ++i) {
      workers.push_back(std::make_unique<WorkerUnderTest>(dir, "test-worker", "w" + std::to_string(i)));
      ports.push_back(workers.back()->port());
    }
  }

  TempDir dir{"stickyproxy-ext"};
  std::vector<std::unique_ptr<WorkerUnderTest>> workers;
  std::vector<uint16_t> ports;  // of w1..wN, in order
};

// A config whose workers are all external: `[worker wN]` with only an address, one per port.
std::string externalWorkersConfig(const std::vector<uint16_t>& ports,
                                  std::vector<std::pair<std::string, std::string>> overrides = {}) {
  overrides.insert(overrides.begin(), {{"health_check.interval", "200ms"},
                                       {"health_check.fall", "2"},
                                       {"health_check.rise", "1"}});
  for (size_t i = 0; i < ports.size(); ++i) {
    overrides.emplace_back("worker w" + std::to_string(i + 1) + ".address", "127.0.0.1:" + std::to_string(ports[i]));
  }
  return ProxyUnderTest::standardConfig(0, "test-worker", overrides);
}

}  // namespace

TEST_CASE("a killed external worker's sessions move at once, and it takes new sessions again after its restart",
          "[integration][proxy]") {
  ExternalWorkers external(3);
  std::vector<std::unique_ptr<WorkerUnderTest>>& workers = external.workers;
  ProxyUnderTest proxy(externalWorkersConfig(external.ports));
  proxy.start();
  HttpClient client = proxy.client(10s);

  const std::vector<std::string> keys = seededSessionKeys(90, 0x5e55);
  std::map<std::string, std::string> first_on = workerOfEach(client, keys);  // before the kill
  std::map<std::string, int> per_worker;
  for (const auto& [key, worker] : first_on) ++per_worker[worker];
  REQUIRE(per_worker.size() == 3);
  const std::string victim = "w2";
  REQUIRE(per_worker[victim] >= 5);

  const uint16_t victim_port = workers[1]->port();
  workers[1]->process().kill(SIGKILL);
  REQUIRE(workers[1]->process().waitExit(5s));

  // Straight after the kill, before any health check has had to fail: the victim's sessions are
  // served elsewhere (nothing reached the dead worker, so the proxy may send them on), the others
  // stay where they are, and nobody sees an error.
  std::map<std::string, std::string> now_on;
  std::vector<std::string> failures;
  for (const std::string& key : keys) {
    try {
      Response response = asSession(client, key);
      if (response.status != 200) {
        failures.push_back(key + " (on " + first_on[key] + "): status " + std::to_string(response.status) + " " +
                           response.body);
        continue;
      }
      now_on[key] = response.body;
      INFO("session " << key << " was on " << first_on[key] << ", now on " << response.body);
      if (first_on[key] == victim) {
        CHECK(response.body != victim);
        CHECK(response.headerOr("X-Seen-Previous-Worker") == victim);
      } else {
        CHECK(response.body == first_on[key]);
        CHECK(response.headerOr("X-Seen-Previous-Worker") == "");
      }
    } catch (const HarnessError& error) {
      failures.push_back(key + " (on " + first_on[key] + "): " + error.what());
      client.close();
    }
  }
  for (const std::string& failure : failures) UNSCOPED_INFO("failed: " << failure);
  INFO("proxy log:\n" << fileTail(proxy.logPath()));
  CHECK(failures.empty());
  REQUIRE(proxy.waitForWorkerState(victim, "down"));

  // Announced once: the second request of each moved session carries no previous worker.
  for (const std::string& key : keys) {
    if (now_on.count(key) == 0) continue;
    Response response = asSession(client, key);
    REQUIRE(response.status == 200);
    CHECK(response.body == now_on[key]);
    CHECK(response.headerOr("X-Seen-Previous-Worker") == "");
  }

  // The same external worker comes back on the same address: health checks find it ready...
  workers[1].reset();
  workers[1] = std::make_unique<WorkerUnderTest>(external.dir, "test-worker", victim, victim_port,
                                                 std::vector<std::string>{});
  REQUIRE(proxy.waitForWorkerState(victim, "ready"));
  // ...new sessions reach it...
  HttpClient fresh = proxy.client(10s);
  REQUIRE(waitUntil(
      [&] {
        fresh.close();  // a new connection, no cookie: a new session
        Response response = fresh.get("/whoami");
        return response.status == 200 && response.body == victim;
      },
      10s));
  // ...and the moved sessions stay where they moved.
  CHECK(sessionsElsewhere(client, now_on) == 0);
}

TEST_CASE("two proxy instances with the same config route 300 session keys to the same workers",
          "[integration][proxy]") {
  ExternalWorkers external(3);
  // Each instance has its own temp dir: its own listen port, metrics port and state_dir.
  ProxyUnderTest first(externalWorkersConfig(external.ports));
  ProxyUnderTest second(externalWorkersConfig(external.ports));
  REQUIRE(first.port() != second.port());
  REQUIRE(first.dir().path() != second.dir().path());
  first.start();
  second.start();
  HttpClient via_first = first.client(10s);
  HttpClient via_second = second.client(10s);

  const std::vector<std::string> keys = seededSessionKeys(300, 0x2b1d);
  std::map<std::string, int> per_worker;
  int disagreements = 0;
  for (const std::string& key : keys) {
    Response a = asSession(via_first, key);
    Response b = asSession(via_second, key);
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    if (a.body != b.body) {
      ++disagreements;
      UNSCOPED_INFO("key " << key << ": first proxy -> " << a.body << ", second proxy -> " << b.body);
    }
    ++per_worker[a.body];
  }
  CHECK(disagreements == 0);
  CHECK(per_worker.size() == 3);
}

TEST_CASE("moved sessions still go where they moved after the proxy restarts with the same state_dir",
          "[integration][proxy]") {
  // The victim stays down while every session is asked for: a session asked for only after its
  // worker came back would stay there, and a slow (sanitized, loaded) run would see that.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3, "test-worker", {{"supervisor.restart_backoff_initial", "30s"}}));
  proxy.start();
  HttpClient client = proxy.client(10s);

  const std::vector<std::string> keys = seededSessionKeys(90, 0x3e57);
  std::map<std::string, std::string> first_on = workerOfEach(client, keys);
  std::set<std::string> workers;
  for (const auto& [key, worker] : first_on) workers.insert(worker);
  REQUIRE(workers.size() == 3);
  const std::string victim = proxy.killSessionWorker(keys.front());
  INFO("victim " << victim);
  REQUIRE(victim == first_on[keys.front()]);

  std::map<std::string, std::string> moved_to;  // the victim's sessions after the move
  for (const std::string& key : keys) {
    Response response = asSession(client, key);
    REQUIRE(response.status == 200);
    if (first_on[key] == victim) {
      CHECK(response.body != victim);
      CHECK(response.headerOr("X-Seen-Previous-Worker") == victim);
      moved_to[key] = response.body;
    } else {
      CHECK(response.body == first_on[key]);
    }
  }
  REQUIRE(moved_to.size() >= 5);

  int status = proxy.stop();
  INFO("proxy " << describeWaitStatus(status) << "; log:\n" << fileTail(proxy.logPath()));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  // The restarted proxy waits for all three workers, the victim included, before it listens.
  proxy.start();
  HttpClient after = proxy.client(10s);
  int went_back = 0;
  for (const std::string& key : keys) {
    Response response = asSession(after, key);
    REQUIRE(response.status == 200);
    const std::string expected = moved_to.count(key) != 0 ? moved_to[key] : first_on[key];
    if (response.body != expected) {
      ++went_back;
      UNSCOPED_INFO("key " << key << " first on " << first_on[key] << ", expected on " << expected << ", now on "
                           << response.body);
    }
    CHECK(response.headerOr("X-Seen-Previous-Worker") == "");  // announced before the restart
  }
  CHECK(went_back == 0);

  std::set<std::string> new_session_workers;
  for (int i = 0; i < 60; ++i) {
    after.close();
    Response response = after.get("/whoami");
    REQUIRE(response.status == 200);
    REQUIRE(response.setCookieValue(kCookieName));
    new_session_workers.insert(response.body);
  }
  CHECK(new_session_workers.size() == 3);
  CHECK(new_session_workers.count(victim) == 1);
}

TEST_CASE("with no live worker the proxy listens after the startup timeout and answers 503 in JSON",
          "[integration][proxy]") {
  const uint16_t nobody = freePort();  // nothing listens there
  ProxyUnderTest proxy(externalWorkersConfig({nobody}, {{"supervisor.startup_timeout", "1s"}}));
  // ProxyUnderTest::start() waits for a 200 from /ping, which cannot come here: start it by hand.
  const auto started = std::chrono::steady_clock::now();
  ChildProcess process({binaryPath("stickyproxy"), "-c", proxy.configPath()}, proxy.logPath());
  REQUIRE(waitUntil([&] { return !process.running() || canConnect(proxy.port()); }, 10s));
  const auto listening_after = since(started);
  INFO("listening after " << listening_after.count() << " ms; log:\n" << fileTail(proxy.logPath()));
  REQUIRE(process.running());
  CHECK(listening_after >= 900ms);
  CHECK(proxy.logText().find("worker w1 not ready after the startup timeout") != std::string::npos);

  HttpClient client = proxy.client(10s);
  for (std::string path : {"/whoami", "/ping", "/delay?ms=10"}) {
    const auto sent = std::chrono::steady_clock::now();
    Response response = client.get(path);
    const auto took = since(sent);
    INFO(path << " -> " << response.status << " after " << took.count() << " ms: " << response.body);
    CHECK(response.status == 503);
    CHECK(took < 5s);  // no wait for a worker: well before timeouts.upstream_connect (5 s) would end one
    CHECK(response.header("Retry-After"));
    CHECK(response.headerOr("Content-Type").rfind("application/json", 0) == 0);
    picojson::object body = parseJsonObject(response.body);
    CHECK(body["status"].to_str() == "error");
    CHECK(body["message"].is<std::string>());
  }
  CHECK(process.running());
  CHECK(process.stop() == 0);
}

TEST_CASE("the access log has one line per request and never the raw cookie, even after a re-pin",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(3));
  proxy.start();
  HttpClient client = proxy.client(10s);
  const std::string key = seededSessionKeys(1, 0xacce55).front();

  // A session the test names, and one the proxy mints.
  Response first = client.get("/whoami?token=t0ps3cret", {{"Cookie", kCookieName + "=" + key}});
  REQUIRE(first.status == 200);
  const std::string worker = first.body;
  HttpClient minted_client = proxy.client(10s);
  Response minted = minted_client.get("/whoami");
  REQUIRE(minted.status == 200);
  const auto minted_key = minted.setCookieValue(kCookieName);
  REQUIRE(minted_key);
  for (int i = 0; i < 3; ++i) REQUIRE(asSession(client, key).status == 200);

  std::vector<AccessLogLine> lines = accessLinesFor(proxy, "/whoami", 5);
  INFO("log:\n" << proxy.logText());
  REQUIRE(lines.size() == 5);  // one per request, the query string left out of the path
  const std::regex short_key("[0-9a-f]{8}");
  for (const AccessLogLine& line : lines) {
    INFO(line.raw);
    CHECK(line.method == "GET");
    CHECK(line.status == 200);
    CHECK_FALSE(line.repin);
    CHECK(std::regex_match(line.key, short_key));
  }
  const std::string logged_key = lines[0].key;
  CHECK(lines[0].worker == worker);
  CHECK(lines[1].key != logged_key);  // the minted session
  for (size_t i = 2; i < lines.size(); ++i) {
    CHECK(lines[i].key == logged_key);
    CHECK(lines[i].worker == worker);
  }

  proxy.killWorker(worker);  // by pid, without a request of its own: the log's lines stay counted
  Response moved = asSession(client, key);
  REQUIRE(moved.status == 200);
  CHECK(moved.body != worker);
  CHECK(moved.headerOr("X-Seen-Previous-Worker") == worker);
  lines = accessLinesFor(proxy, "/whoami", 6);
  REQUIRE(lines.size() == 6);
  INFO(lines.back().raw);
  CHECK(lines.back().status == 200);
  CHECK(lines.back().worker == moved.body);
  CHECK(lines.back().repin);
  CHECK(lines.back().key == logged_key);

  // The supervisor restarts the worker (more log lines), then the proxy stops (more again).
  REQUIRE(proxy.waitForWorkerState(worker, "ready"));
  CHECK(asSession(client, key).body == moved.body);
  proxy.stop();
  const std::string log = proxy.logText();
  CHECK(log.find(key) == std::string::npos);
  CHECK(log.find(*minted_key) == std::string::npos);
  CHECK(log.find("t0ps3cret") == std::string::npos);
}

TEST_CASE("workers end with a proxy killed by SIGKILL instead of holding their sockets", "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker"));
  proxy.start();
  const std::vector<pid_t> workers = proxy.childPids();
  REQUIRE(workers.size() == 2);
  proxy.process().kill(SIGKILL);
  // Each worker watches its supervisor through a pidfd; the state directory names no successor.
  bool all_gone = waitUntil(
      [&] {
        for (pid_t worker : workers) {
          if (processExists(worker)) return false;
        }
        return true;
      },
      10s);
  if (!all_gone) {
    for (pid_t worker : workers) ::kill(worker, SIGKILL);  // by pid: nothing outlives the test
  }
  CHECK(all_gone);
}
