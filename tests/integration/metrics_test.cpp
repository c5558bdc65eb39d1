// /metrics through the real binaries: the families are there, their counts follow the traffic
// sent, and promtool accepts the exposition.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "tests/integration/harness.h"
#include "tests/integration/metrics_scrape.h"

using namespace stickyproxy::integration;

namespace {

// The metric names (stickyproxy_* and process_*) that `text` (a rules file, a dashboard) reads.
std::set<std::string> metricNamesIn(const std::string& text) {
  static const std::regex kName("\\b(stickyproxy|process)_[a-z_]+");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName); it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

std::string requests(const std::string& worker, int code) {
  return "stickyproxy_requests_total{code=\"" + std::to_string(code) + "\",worker=\"" + worker + "\"}";
}

}  // namespace

TEST_CASE("metrics count the traffic sent, per worker and code, and promtool accepts them",
          "[integration][metrics]") {
  // A killed worker stays down for a second before its restart: its session's request moves then.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(
      4, "test-worker", {{"timeouts.upstream_response", "1s"}, {"supervisor.restart_backoff_initial", "1s"}}));
  proxy.start();
  INFO("proxy log:\n" << fileTail(proxy.logPath()));

  Scrape before = scrape(proxy.metricsPort());
  REQUIRE(before.response.status == 200);
  CHECK(before.response.headerOr("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");

  // One session (the cookie jar keeps its key), so every request reaches the same worker.
  HttpClient client = proxy.client(10s);
  client.useCookieJar();
  Response first = client.get("/whoami");
  REQUIRE(first.status == 200);
  const std::string worker = first.body;
  for (int i = 0; i < 9; ++i) REQUIRE(client.get("/whoami").body == worker);
  CHECK(client.get("/no-such-page").status == 404);
  // Slower than timeouts.upstream_response: the proxy answers 504 itself.
  CHECK(client.get("/delay?ms=3000").status == 504);
  // The worker drops the connection without an answer: a GET is retried once, then 502.
  CHECK(client.get("/abort").status == 502);

  Scrape after = scrape(proxy.metricsPort());
  REQUIRE(after.response.status == 200);
  const Samples& a = after.samples;
  const Samples& b = before.samples;
  INFO("worker " << worker << "; scrape:\n" << after.response.body);

  CHECK(valueOr(a, requests(worker, 200)) - valueOr(b, requests(worker, 200)) == 10);
  CHECK(valueOr(a, requests(worker, 404)) - valueOr(b, requests(worker, 404)) == 1);
  CHECK(valueOr(a, requests(worker, 504)) - valueOr(b, requests(worker, 504)) == 1);
  CHECK(valueOr(a, requests(worker, 502)) - valueOr(b, requests(worker, 502)) == 1);
  CHECK(valueOr(a, "stickyproxy_proxy_errors_total{cause=\"upstream_response_timeout\",code=\"504\"}") == 1);
  CHECK(valueOr(a, "stickyproxy_proxy_errors_total{cause=\"upstream_connection_lost\",code=\"502\"}") == 1);
  CHECK(valueOr(a, "stickyproxy_retries_total{cause=\"connection_lost\"}") == 1);
  const std::string count = "stickyproxy_request_duration_seconds_count{worker=\"" + worker + "\"}";
  CHECK(valueOr(a, count) - valueOr(b, count) == 13);
  const std::string fast = "stickyproxy_request_duration_seconds_bucket{worker=\"" + worker + "\",le=\"0.5\"}";
  const std::string slow = "stickyproxy_request_duration_seconds_bucket{worker=\"" + worker + "\",le=\"2.5\"}";
  // All but two under 0.5 s: the 504 (1 s), and the /abort, whose replay first waited half a
  // second to see whether the worker was dying.
  CHECK(valueOr(a, fast) - valueOr(b, fast) == 11);
  CHECK(valueOr(a, slow) - valueOr(b, slow) == 13);

  for (const std::string name : {"w1", "w2", "w3", "w4"}) {
    const std::string label = "{worker=\"" + name + "\"}";
    CHECK(valueOr(a, "stickyproxy_worker_up" + label, -1) == 1);
    CHECK(valueOr(a, "stickyproxy_worker_state{worker=\"" + name + "\",state=\"ready\"}", -1) == 1);
    CHECK(valueOr(a, "stickyproxy_worker_state{worker=\"" + name + "\",state=\"down\"}", -1) == 0);
    CHECK(valueOr(a, "stickyproxy_worker_restarts_total" + label, -1) == 0);
    CHECK(valueOr(a, "stickyproxy_queued_requests" + label, -1) == 0);
    CHECK(valueOr(a, "stickyproxy_worker_resident_memory_bytes" + label) > 0);
    CHECK(a.count("stickyproxy_worker_cpu_seconds_total" + label) == 1);
  }
  // The /delay request may still hold its slot for a moment after the 504.
  CHECK(valueOr(a, "stickyproxy_in_flight_requests{worker=\"" + worker + "\"}", -1) <= 1);
  CHECK(valueOr(a, "stickyproxy_sessions{worker=\"" + worker + "\"}") >= 1);
  CHECK(valueOr(a, "stickyproxy_client_connections") >= 1);
  CHECK(valueOr(a, "stickyproxy_received_bytes_total") - valueOr(b, "stickyproxy_received_bytes_total") > 13 * 20);
  CHECK(valueOr(a, "stickyproxy_sent_bytes_total") - valueOr(b, "stickyproxy_sent_bytes_total") > 13 * 50);
  CHECK(valueOr(a, "process_resident_memory_bytes") > 0);
  CHECK(valueOr(a, "process_open_fds") > 0);
  CHECK(valueOr(a, "process_start_time_seconds") > 1.7e9);
  CHECK(a.count("process_cpu_seconds_total") == 1);

  SECTION("promtool check metrics finds nothing to complain about") {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
      WARN("promtool not found (Debian package prometheus): the exposition was not linted");
      return;
    }
    const std::string path = proxy.dir().file("scrape.txt");
    writeFile(path, after.response.body);
    const std::string output = proxy.dir().file("promtool.txt");
    int status = std::system(("promtool check metrics < " + path + " > " + output + " 2>&1").c_str());
    INFO("promtool:\n" << readFile(output));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  SECTION("every series the shipped alert rules and Grafana dashboard read is exposed") {
    std::set<std::string> exposed;
    for (const auto& [series, value] : a) exposed.insert(series.substr(0, series.find('{')));
    for (const std::string file : {"metrics/alerts.yml", "metrics/grafana-dashboard.json"}) {
      std::set<std::string> read = metricNamesIn(readFile(std::string(STICKYPROXY_SOURCE_DIR) + "/" + file));
      CHECK(read.size() >= 5);
      for (const std::string& name : read) {
        INFO(file << " reads " << name);
        CHECK(exposed.count(name) == 1);
      }
    }
  }

  SECTION("the listener serves the status page and its JSON, read-only, and 404 elsewhere") {
    HttpClient metrics_client(proxy.metricsPort(), 10s);
    Response page = metrics_client.get("/");
    CHECK(page.status == 200);
    CHECK(page.header("Content-Type").value_or("").rfind("text/html", 0) == 0);
    CHECK(page.body.find("status.json") != std::string::npos);
    CHECK(page.body.find("<link rel=\"icon\" href=\"data:,\">") != std::string::npos);
    Response status = metrics_client.get("/status.json");
    CHECK(status.status == 200);
    CHECK(status.header("Content-Type").value_or("") == "application/json");
    CHECK(status.body.find("\"name\":\"" + worker + "\"") != std::string::npos);
    CHECK(metrics_client.request("POST", "/status.json").status == 405);
    CHECK(metrics_client.get("/metrics/extra").status == 404);
    CHECK(metrics_client.get("/index.html").status == 404);
  }

  SECTION("a killed worker counts a restart and its sessions count as re-pinned by death") {
    proxy.killWorker(worker);
    // The session's next request, while its worker is down, moves it: counted as a death.
    Response moved = client.get("/whoami");
    REQUIRE(moved.status == 200);
    CHECK(moved.body != worker);
    CHECK(valueOr(scrape(proxy.metricsPort()).samples, "stickyproxy_repins_total{reason=\"death\"}") == 1);
    const std::string label = "{worker=\"" + worker + "\"}";
    Samples last;
    bool back = waitUntil(
        [&] {
          last = scrape(proxy.metricsPort()).samples;
          return valueOr(last, "stickyproxy_worker_restarts_total" + label) == 1 &&
                 valueOr(last, "stickyproxy_worker_up" + label) == 1;
        },
        10s, 100ms);
    CHECK(back);
    // Its worker is back, and the session stays where it moved.
    CHECK(client.get("/whoami").body == moved.body);
  }
}
