#include "metrics/proxy_metrics.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>

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
