#include "metrics/proxy_metrics.h"

#include <catch2/catch.hpp>
#include <picojson.h>

#include <unistd.h>

#include <string>
#include <vector>

using namespace stickyproxy;

namespace {

bool hasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("finished requests count by worker and code and fill the duration histogram", "[metrics]") {
  ProxyMetrics metrics({"starting", "ready", "down"});
  metrics.requestFinished("w1", 200, 0.002);
  metrics.requestFinished("w1", 200, 4.0);
  metrics.requestFinished("w2", 404, 0.02);
  metrics.requestFinished("", 503, 0.0005);
  metrics.requestRefused(400);
  std::string text = metrics.exposition({});
  CHECK(hasLine(text, "# TYPE stickyproxy_requests_total counter"));
  CHECK(hasLine(text, "stickyproxy_requests_total{code=\"200\",worker=\"w1\"} 2"));
  CHECK(hasLine(text, "stickyproxy_requests_total{code=\"404\",worker=\"w2\"} 1"));
  CHECK(hasLine(text, "stickyproxy_requests_total{code=\"503\",worker=\"\"} 1"));
  CHECK(hasLine(text, "stickyproxy_requests_total{code=\"400\",worker=\"\"} 1"));
  CHECK(hasLine(text, "# TYPE stickyproxy_request_duration_seconds histogram"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_count{worker=\"w1\"} 2"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_bucket{worker=\"w1\",le=\"0.0025\"} 1"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_bucket{worker=\"w1\",le=\"2.5\"} 1"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_bucket{worker=\"w1\",le=\"5\"} 2"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_bucket{worker=\"w1\",le=\"120\"} 2"));
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_bucket{worker=\"w1\",le=\"+Inf\"} 2"));
  // A refused request is counted but not timed.
  CHECK(hasLine(text, "stickyproxy_request_duration_seconds_count{worker=\"\"} 1"));
}

TEST_CASE("errors, retries, connect errors and re-pins count by their bounded labels", "[metrics]") {
  ProxyMetrics metrics({"starting", "ready", "down"});
  metrics.proxyError(503, "queue_full");
  metrics.proxyError(503, "queue_full");
  metrics.proxyError(504, "upstream_response_timeout");
  metrics.retried("connect_failed");
  metrics.upstreamConnectError("w3");
  metrics.sessionsRepinned("death", 7);
  metrics.sessionsRepinned("death", 3);
  metrics.sessionsRepinned("unavailable", 1);
  std::string text = metrics.exposition({});
  CHECK(hasLine(text, "stickyproxy_proxy_errors_total{cause=\"queue_full\",code=\"503\"} 2"));
  CHECK(hasLine(text, "stickyproxy_proxy_errors_total{cause=\"upstream_response_timeout\",code=\"504\"} 1"));
  CHECK(hasLine(text, "stickyproxy_retries_total{cause=\"connect_failed\"} 1"));
  CHECK(hasLine(text, "stickyproxy_upstream_connect_errors_total{worker=\"w3\"} 1"));
  CHECK(hasLine(text, "stickyproxy_repins_total{reason=\"death\"} 10"));
  CHECK(hasLine(text, "stickyproxy_repins_total{reason=\"unavailable\"} 1"));
}

TEST_CASE("the error, retry and re-pin series an alert reads exist at 0 before their first event", "[metrics]") {
  ProxyMetrics metrics({"starting", "ready", "down"});
  ProxySnapshot snapshot;
  snapshot.workers.push_back(WorkerSnapshot{});
  snapshot.workers.back().name = "w1";
  snapshot.workers.back().state = "ready";
  std::string text = metrics.exposition(snapshot);
  CHECK(hasLine(text, "stickyproxy_repins_total{reason=\"death\"} 0"));
  CHECK(hasLine(text, "stickyproxy_repins_total{reason=\"evict\"} 0"));
  CHECK(hasLine(text, "stickyproxy_retries_total{cause=\"connection_lost\"} 0"));
  CHECK(hasLine(text, "stickyproxy_proxy_errors_total{cause=\"queue_full\",code=\"503\"} 0"));
  CHECK(hasLine(text, "stickyproxy_proxy_errors_total{cause=\"upstream_connect_failed\",code=\"502\"} 0"));
  CHECK(hasLine(text, "stickyproxy_proxy_errors_total{cause=\"upstream_response_timeout\",code=\"504\"} 0"));
  CHECK(hasLine(text, "stickyproxy_upstream_connect_errors_total{worker=\"w1\"} 0"));
}

TEST_CASE("worker gauges mirror the snapshot, one state series per known state", "[metrics]") {
  ProxyMetrics metrics({"starting", "ready", "draining", "down"});
  ProxySnapshot snapshot;
  snapshot.workers.push_back({"w1", "ready", ::getpid(), 2, 17, 3, 1});
  snapshot.workers.push_back({"w2", "draining", 0, 0, 4, 0, 0});
  snapshot.workers.push_back({"w3", "down", 0, 5, 0, 0, 0});
  snapshot.client_connections = 12;
  snapshot.received_bytes = 1000;
  snapshot.sent_bytes = 5000;
  std::string text = metrics.exposition(snapshot);
  CHECK(hasLine(text, "stickyproxy_worker_up{worker=\"w1\"} 1"));
  CHECK(hasLine(text, "stickyproxy_worker_up{worker=\"w2\"} 1"));
  CHECK(hasLine(text, "stickyproxy_worker_up{worker=\"w3\"} 0"));
  CHECK(hasLine(text, "stickyproxy_worker_state{worker=\"w1\",state=\"ready\"} 1"));
  CHECK(hasLine(text, "stickyproxy_worker_state{worker=\"w1\",state=\"starting\"} 0"));
  CHECK(hasLine(text, "stickyproxy_worker_state{worker=\"w1\",state=\"draining\"} 0"));
  CHECK(hasLine(text, "stickyproxy_worker_state{worker=\"w3\",state=\"down\"} 1"));
  CHECK(hasLine(text, "# TYPE stickyproxy_worker_restarts_total counter"));
  CHECK(hasLine(text, "stickyproxy_worker_restarts_total{worker=\"w3\"} 5"));
  CHECK(hasLine(text, "stickyproxy_sessions{worker=\"w1\"} 17"));
  CHECK(hasLine(text, "stickyproxy_in_flight_requests{worker=\"w1\"} 3"));
  CHECK(hasLine(text, "stickyproxy_queued_requests{worker=\"w1\"} 1"));
  CHECK(hasLine(text, "stickyproxy_client_connections 12"));
  CHECK(hasLine(text, "stickyproxy_received_bytes_total 1000"));
  CHECK(hasLine(text, "stickyproxy_sent_bytes_total 5000"));
  // Only a worker with a process has CPU and memory series.
  CHECK(text.find("stickyproxy_worker_cpu_seconds_total{worker=\"w1\"}") != std::string::npos);
  CHECK(text.find("stickyproxy_worker_resident_memory_bytes{worker=\"w1\"}") != std::string::npos);
  CHECK(text.find("stickyproxy_worker_cpu_seconds_total{worker=\"w2\"}") == std::string::npos);
  CHECK(text.find("process_cpu_seconds_total ") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
  CHECK(text.find("process_open_fds ") != std::string::npos);
  CHECK(text.find("process_start_time_seconds ") != std::string::npos);
}

TEST_CASE("histogramQuantile interpolates inside the bucket the rank falls in", "[metrics]") {
  const std::vector<double> bounds = {0.1, 1, 10};
  CHECK_FALSE(histogramQuantile(0.99, bounds, {0, 0, 0, 0}).has_value());
  // 100 requests: 50 under 0.1 s, 40 in (0.1, 1], 10 in (1, 10]. Rank 99 is the 9th of the 10.
  CHECK(*histogramQuantile(0.99, bounds, {50, 90, 100, 100}) == Approx(1 + 9 * 0.9));
  CHECK(*histogramQuantile(0.5, bounds, {50, 90, 100, 100}) == Approx(0.1));
  CHECK(*histogramQuantile(0.25, bounds, {50, 90, 100, 100}) == Approx(0.05));
  // In +Inf: the highest finite bound, as PromQL answers.
  CHECK(*histogramQuantile(0.99, bounds, {0, 0, 0, 5}) == Approx(10));
}

TEST_CASE("the status document carries each worker's snapshot and its series from the registry", "[metrics]") {
  ProxyMetrics metrics({"starting", "ready", "down"});
  for (int i = 0; i < 98; ++i) metrics.requestFinished("w1", 200, 0.003);
  metrics.requestFinished("w1", 502, 0.02);
  metrics.requestFinished("w1", 504, 40);
  metrics.requestFinished("w2", 404, 0.02);
  metrics.requestFinished("", 503, 0.0005);

  ProxySnapshot snapshot;
  WorkerSnapshot w1;
  w1.name = "w1";
  w1.state = "ready";
  w1.pid = ::getpid();  // any live process will do for /proc
  w1.uptime_seconds = 12.7;
  w1.restarts = 2;
  w1.sessions = 7;
  w1.in_flight = 3;
  w1.queued = 1;
  WorkerSnapshot w3;
  w3.name = "w3";
  w3.state = "down";
  snapshot.workers = {w1, w3};
  snapshot.client_connections = 5;

  picojson::value parsed;
  std::string error = picojson::parse(parsed, metrics.statusJson(snapshot));
  REQUIRE(error.empty());
  const auto& document = parsed.get<picojson::object>();
  CHECK(document.at("client_connections").get<double>() == 5);
  const auto& bounds = document.at("duration_buckets").get<picojson::array>();
  REQUIRE(bounds.size() == 17);
  CHECK(bounds.front().get<double>() == 0.001);
  CHECK(bounds.back().get<std::string>() == "+Inf");

  const auto& workers = document.at("workers").get<picojson::array>();
  REQUIRE(workers.size() == 2);  // the snapshot's workers only: not w2, not ""
  const auto& first = workers[0].get<picojson::object>();
  CHECK(first.at("name").get<std::string>() == "w1");
  CHECK(first.at("state").get<std::string>() == "ready");
  CHECK(first.at("up").get<bool>());
  CHECK(first.at("uptime_seconds").get<double>() == 12);
  CHECK(first.at("sessions").get<double>() == 7);
  CHECK(first.at("in_flight").get<double>() == 3);
  CHECK(first.at("queued").get<double>() == 1);
  CHECK(first.at("restarts").get<double>() == 2);
  CHECK(first.at("requests").get<double>() == 100);
  CHECK(first.at("errors_5xx").get<double>() == 2);
  const auto& counts = first.at("duration_counts").get<picojson::array>();
  REQUIRE(counts.size() == 17);
  CHECK(counts[2].get<double>() == 98);   // le 0.005
  CHECK(counts[4].get<double>() == 99);   // le 0.025
  CHECK(counts[13].get<double>() == 99);   // le 30: the 40 s one is above
  CHECK(counts[14].get<double>() == 100);  // le 60
  CHECK(counts[16].get<double>() == 100);  // +Inf
  // Rank 99 is the last request under 25 ms: p99 ends that bucket.
  CHECK(first.at("p99_seconds").get<double>() == Approx(0.025));
  CHECK(first.at("cpu_seconds").is<double>());
  CHECK(first.at("resident_memory_bytes").get<double>() > 0);

  const auto& down = workers[1].get<picojson::object>();
  CHECK(down.at("name").get<std::string>() == "w3");
  CHECK_FALSE(down.at("up").get<bool>());
  CHECK(down.at("uptime_seconds").is<picojson::null>());
  CHECK(down.at("requests").get<double>() == 0);
  CHECK(down.at("p99_seconds").is<picojson::null>());
  CHECK(down.at("cpu_seconds").is<picojson::null>());
}
