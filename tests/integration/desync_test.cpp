// stickyproxy end to end against request smuggling: Severe heads are refused with 400 and a
// closed connection before any worker sees them, Ambiguous ones are forwarded normalised and
// end their connection, the mode key changes both, and a worker's badly framed response never
// reaches the client. Each is counted by class and reason.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

struct Probe {
  const char* reason;  // the expected label of stickyproxy_desync_requests_total
  std::string bytes;
};

// Requests nginx refuses and a lenient proxy forwards; each would be read two ways.
const std::vector<Probe> kSevereProbes = {
    {"bare_cr", "POST /whoami HTTP/1.1\r\nHost: t\r\n\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
    {"bare_lf", "GET /whoami HTTP/1.1\nHost: t\r\n\r\n"},
    {"space_before_first_header", "POST /whoami HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: t\r\n\r\n0\r\n\r\n"},
    {"space_before_colon", "POST /whoami HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello"},
    {"bad_header_name", "GET /whoami HTTP/1.1\r\nHost: t\r\n: empty\r\n\r\n"},
    {"control_char", "GET /who\tami HTTP/1.1\r\nHost: t\r\n\r\n"},
    {"bad_request_line", "GET /whoami HTTP/1.1 GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n"},
    {"bad_version", "GET /whoami HTTP/2.0\r\nHost: t\r\n\r\n"},
    {"te_with_content_length",
     "POST /whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
    {"conflicting_content_length", "POST /whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\nhello"},
    {"missing_host", "GET /whoami HTTP/1.1\r\n\r\n"},
    {"duplicate_host", "GET /whoami HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n"},
};

std::string desyncSeries(const std::string& head_class, const std::string& reason) {
  return "stickyproxy_desync_requests_total{class=\"" + head_class + "\",reason=\"" + reason + "\"}";
}

// Requests answered by any worker so far (stickyproxy_requests_total with a worker label).
double workerRequests(uint16_t metrics_port) {
  double total = 0;
  for (const auto& [series, value] : scrape(metrics_port).samples) {
    if (series.starts_with("stickyproxy_requests_total{") && series.find("worker=\"\"") == std::string::npos &&
        series.find("worker=") != std::string::npos) {
      total += value;
    }
  }
  return total;
}

// Sends `bytes` on a new connection: the answer must be 200 and the proxy must close after it.
Response answerThenClose(const ProxyUnderTest& proxy, const std::string& bytes) {
  INFO(bytes);
  HttpClient client = proxy.client(10s);
  client.sendRaw(bytes);
  Response answer = client.readResponse();
  CHECK(answer.status == 200);
  CHECK(client.waitForClose(5s));
  return answer;
}

}  // namespace

TEST_CASE("severe request heads get 400 and a closed connection, and no worker sees them", "[integration][desync]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker"));
  proxy.start();
  double answered_before = workerRequests(proxy.metricsPort());

  for (const Probe& probe : kSevereProbes) {
    INFO(probe.reason);
    HttpClient client = proxy.client(10s);
    client.sendRaw(probe.bytes);
    Response answer = client.readResponse();
    CHECK(answer.status == 400);
    CHECK(answer.header("Connection") == "close");
    CHECK(client.waitForClose(5s));
  }

  Samples samples = scrape(proxy.metricsPort()).samples;
  for (const Probe& probe : kSevereProbes) {
    INFO(probe.reason);
    CHECK(valueOr(samples, desyncSeries("severe", probe.reason)) == 1);
  }
  CHECK(workerRequests(proxy.metricsPort()) == answered_before);
  std::string log = proxy.logText();
  CHECK(log.find("note=\"desync severe: bare_lf\"") != std::string::npos);

  HttpClient after = proxy.client();
  CHECK(after.get("/whoami").status == 200);
}

TEST_CASE("ambiguous requests reach the worker normalised, then end the connection", "[integration][desync]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker"));
  proxy.start();

  // A framing look-alike is dropped before the worker, which a CGI-style back end would read as
  // Transfer-Encoding; the request's real framing (Content-Length) is kept.
  Response seen = answerThenClose(proxy,
      "POST /headers HTTP/1.1\r\nHost: t\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello");
  INFO("worker saw:\n" << seen.body);
  CHECK(seen.body.find("Transfer_Encoding") == std::string::npos);
  CHECK(seen.body.find("Content-Length: 5") != std::string::npos);
  CHECK(seen.body.find("Connection: close") != std::string::npos);  // the worker connection ends too
  CHECK(seen.header("Connection") == "close");

  // A GET with a body, and a request pipelined behind it: only the first is answered.
  answerThenClose(proxy, "GET /whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                         "GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n");
  // Folded lines are joined with a space.
  Response unfolded = answerThenClose(proxy, "GET /headers HTTP/1.1\r\nHost: t\r\nX-Folded: one\r\n two\r\n\r\n");
  CHECK(unfolded.body.find("X-Folded: one two\n") != std::string::npos);
  // HTTP/1.0 with Transfer-Encoding: read as chunked.
  answerThenClose(proxy, "POST /headers HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  // HTTP/1.0 without Host: the worker still gets a Host (its own name), as HTTP/1.1 needs.
  Response hosted = answerThenClose(proxy, "GET /headers HTTP/1.0\r\n\r\n");
  CHECK(hosted.body.find("Host: w") != std::string::npos);

  Samples samples = scrape(proxy.metricsPort()).samples;
  CHECK(valueOr(samples, desyncSeries("ambiguous", "missing_host_http10")) == 1);
  CHECK(valueOr(samples, desyncSeries("ambiguous", "framing_lookalike")) == 1);
  CHECK(valueOr(samples, desyncSeries("ambiguous", "body_on_bodiless_method")) == 1);
  CHECK(valueOr(samples, desyncSeries("ambiguous", "obsolete_fold")) == 1);
  CHECK(valueOr(samples, desyncSeries("ambiguous", "te_on_http10")) == 1);
  std::vector<AccessLogLine> lines = accessLinesFor(proxy, "/headers", 3);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0].note == "desync ambiguous: framing_lookalike");

  // Two equal lengths are collapsed to one and the connection stays open.
  HttpClient twice = proxy.client(10s);
  twice.sendRaw("POST /headers HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
  Response collapsed = twice.readResponse();
  CHECK(collapsed.status == 200);
  CHECK(countOccurrences(collapsed.body, "Content-Length:") == 1);
  CHECK(twice.get("/whoami").status == 200);
}

TEST_CASE("desync_mode strictest refuses ambiguous requests; monitor only counts", "[integration][desync]") {
  const std::string get_with_body = "GET /whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
  {
    ProxyUnderTest strictest(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.desync_mode", "strictest"}}));
    strictest.start();
    HttpClient client = strictest.client(10s);
    client.sendRaw(get_with_body);
    CHECK(client.readResponse().status == 400);
    CHECK(client.waitForClose(5s));
    CHECK(metricValue(strictest.metricsPort(), desyncSeries("ambiguous", "body_on_bodiless_method")) == 1);
  }
  {
    ProxyUnderTest monitor(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.desync_mode", "monitor"}}));
    monitor.start();
    HttpClient client = monitor.client(10s);
    client.sendRaw(get_with_body);
    CHECK(client.readResponse().status == 200);
    // Not closed: the next request on the connection is answered.
    CHECK(client.get("/whoami").status == 200);
    // A severe head that llhttp reads is forwarded too (as HTTP/1.1), and counted.
    HttpClient version = monitor.client(10s);
    version.sendRaw("GET /whoami HTTP/2.0\r\nHost: t\r\n\r\n");
    CHECK(version.readResponse().status == 200);
    Samples samples = scrape(monitor.metricsPort()).samples;
    CHECK(valueOr(samples, desyncSeries("ambiguous", "body_on_bodiless_method")) == 1);
    CHECK(valueOr(samples, desyncSeries("severe", "bad_version")) == 1);
  }
}

TEST_CASE("a worker response with bad framing is answered 502 and its connection dropped", "[integration][desync]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker"));
  proxy.start();
  HttpClient client = proxy.client(10s);
  Response bad = client.get("/bad-framing");
  CHECK(bad.status == 502);
  CHECK(bad.body.find("hi") == std::string::npos);
  CHECK(metricValue(proxy.metricsPort(), "stickyproxy_proxy_errors_total{cause=\"upstream_bad_response\",code=\"502\"}") ==
        1);
  // The worker is fine and the next request gets a fresh connection.
  HttpClient next = proxy.client(10s);
  CHECK(next.get("/whoami").status == 200);
}
