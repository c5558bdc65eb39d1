#include "metrics/proxy_metrics.h"

#include <picojson.h>
#include <prometheus/text_serializer.h>

#include <cassert>
#include <cmath>

#include "metrics/process_stats.h"

namespace stickyproxy {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// From a cached static file (1 ms) to a slow analysis that still succeeds (2 min, the
// upstream response timeout's order): the alert on p99 > 3 s needs buckets on both sides of 3.
const prometheus::Histogram::BucketBoundaries& durationBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  return kBuckets;
}

// A family built from live state for one scrape.
struct Built {
  MetricFamily family;

  Built(std::string name, std::string help, MetricType type) {
    family.name = std::move(name);
    family.help = std::move(help);
    family.type = type;
  }
  void add(std::vector<ClientMetric::Label> labels, double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    if (family.type == MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
};

bool stateIsUp(std::string_view state) { return state == "ready" || state == "draining"; }

picojson::value number(double value) { return picojson::value(value); }

}  // namespace

ProxyMetrics::ProxyMetrics(std::vector<std::string> worker_states)
    : worker_states_(std::move(worker_states)),
      registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("stickyproxy_requests_total")
                    .Help("Client requests finished, by worker (\"\" when the proxy answered alone) and status code "
                          "(499: the client went away)")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("stickyproxy_request_duration_seconds")
                     .Help("Time from a request's head to the end of its response, by worker")
                     .Register(*registry_)),
      proxy_errors_(prometheus::BuildCounter()
                        .Name("stickyproxy_proxy_errors_total")
                        .Help("Error responses the proxy sent by itself, by status code and cause")
                        .Register(*registry_)),
      retries_(prometheus::BuildCounter()
                   .Name("stickyproxy_retries_total")
                   .Help("Requests sent again (to the same or the session's new worker), by cause")
                   .Register(*registry_)),
      connect_errors_(prometheus::BuildCounter()
                          .Name("stickyproxy_upstream_connect_errors_total")
                          .Help("Failed connections to a worker")
                          .Register(*registry_)),
      repins_(prometheus::BuildCounter()
                  .Name("stickyproxy_repins_total")
                  .Help("Sessions moved to another worker, by reason")
                  .Register(*registry_)),
      cookies_refused_(prometheus::BuildCounter()
                           .Name("stickyproxy_cookies_refused_total")
                           .Help("Routing cookies ignored (treated as a new session), by reason")
                           .Register(*registry_)),
      desync_requests_(prometheus::BuildCounter()
                           .Name("stickyproxy_desync_requests_total")
                           .Help("Requests whose head is not compliant (desync classes), by class and reason")
                           .Register(*registry_)),
      tls_errors_(prometheus::BuildCounter()
                      .Name("stickyproxy_tls_errors_total")
                      .Help("TLS connections that failed (handshake or record), by reason")
                      .Register(*registry_)),
      client_limited_(prometheus::BuildCounter()
                          .Name("stickyproxy_client_limited_total")
                          .Help("Requests answered 429 by a per-client limit (connections or rate)")
                          .Register(*registry_)),
      connections_cut_(prometheus::BuildCounter()
                           .Name("stickyproxy_client_connections_cut_total")
                           .Help("Client connections cut without an answer (over_limit, send_idle)")
                           .Register(*registry_)),
      replay_dropped_(prometheus::BuildCounter()
                          .Name("stickyproxy_retry_buffer_dropped_total")
                          .Help("Request bodies no longer kept for a replay: over retry_buffer (request) or "
                                "retry_buffer_total (total)")
                          .Register(*registry_)) {
  for (std::string_view limit : kReplayLimits) counterFor(replay_dropped_, replay_dropped_series_, "limit", limit);
  for (std::string_view limit : kClientLimits) counterFor(client_limited_, client_limited_series_, "limit", limit);
  for (std::string_view reason : kConnectionCuts) {
    counterFor(connections_cut_, connection_cut_series_, "reason", reason);
  }
  for (std::string_view reason : kTlsErrors) counterFor(tls_errors_, tls_error_series_, "reason", reason);
  for (std::string_view reason : kCookieRefusals) counterFor(cookies_refused_, cookie_refusal_series_, "reason", reason);
  for (std::string_view reason : kRepinReasons) counterFor(repins_, repin_series_, "reason", reason);
  for (std::string_view cause : kRetryCauses) counterFor(retries_, retry_series_, "cause", cause);
  for (const auto& [status, cause] : kProxyErrorCauses) errorCounter(status, cause);
}

prometheus::Counter& ProxyMetrics::counterFor(prometheus::Family<prometheus::Counter>& family,
                                              std::map<std::string, prometheus::Counter*>& cache,
                                              std::string_view label_name, std::string_view label_value) {
  std::string key(label_value);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, &family.Add({{std::string(label_name), key}})).first;
  }
  return *it->second;
}

void ProxyMetrics::cookieRefused(std::string_view reason) {
  counterFor(cookies_refused_, cookie_refusal_series_, "reason", reason).Increment();
}

void ProxyMetrics::desyncRequest(std::string_view head_class, std::string_view reason) {
  auto key = std::make_pair(std::string(head_class), std::string(reason));
  auto it = desync_series_.find(key);
  if (it == desync_series_.end()) {
    it = desync_series_.emplace(key, &desync_requests_.Add({{"class", key.first}, {"reason", key.second}})).first;
  }
  it->second->Increment();
}

void ProxyMetrics::tlsError(std::string_view reason) {
  counterFor(tls_errors_, tls_error_series_, "reason", reason).Increment();
}

void ProxyMetrics::clientLimited(std::string_view limit) {
  counterFor(client_limited_, client_limited_series_, "limit", limit).Increment();
}

void ProxyMetrics::replayBodyDropped(std::string_view limit) {
  counterFor(replay_dropped_, replay_dropped_series_, "limit", limit).Increment();
}

void ProxyMetrics::connectionCut(std::string_view reason) {
  counterFor(connections_cut_, connection_cut_series_, "reason", reason).Increment();
}

void ProxyMetrics::requestFinished(std::string_view worker, int status, double duration_s) {
  auto key = std::make_pair(std::string(worker), status);
  auto it = request_series_.find(key);
  if (it == request_series_.end()) {
    it = request_series_.emplace(key, &requests_.Add({{"worker", key.first}, {"code", std::to_string(status)}})).first;
  }
  it->second->Increment();
  auto histogram = duration_series_.find(key.first);
  if (histogram == duration_series_.end()) {
    histogram = duration_series_.emplace(key.first, &durations_.Add({{"worker", key.first}}, durationBuckets())).first;
  }
  histogram->second->Observe(duration_s);
}

void ProxyMetrics::requestRefused(int status) {
  auto key = std::make_pair(std::string(), status);
  auto it = request_series_.find(key);
  if (it == request_series_.end()) {
    it = request_series_.emplace(key, &requests_.Add({{"worker", ""}, {"code", std::to_string(status)}})).first;
  }
  it->second->Increment();
}

prometheus::Counter& ProxyMetrics::errorCounter(int status, std::string_view cause) {
  auto key = std::make_pair(status, std::string(cause));
  auto it = error_series_.find(key);
  if (it == error_series_.end()) {
    it = error_series_.emplace(key, &proxy_errors_.Add({{"code", std::to_string(status)}, {"cause", key.second}}))
             .first;
  }
  return *it->second;
}

void ProxyMetrics::proxyError(int status, std::string_view cause) { errorCounter(status, cause).Increment(); }

void ProxyMetrics::retried(std::string_view cause) { counterFor(retries_, retry_series_, "cause", cause).Increment(); }

void ProxyMetrics::upstreamConnectError(std::string_view worker) {
  counterFor(connect_errors_, connect_error_series_, "worker", worker).Increment();
}

void ProxyMetrics::sessionsRepinned(std::string_view reason, uint64_t count) {
  counterFor(repins_, repin_series_, "reason", reason).Increment(static_cast<double>(count));
}

std::optional<double> histogramQuantile(double quantile, const std::vector<double>& bounds,
                                        const std::vector<uint64_t>& cumulative) {
  if (cumulative.empty() || cumulative.back() == 0) return std::nullopt;
  assert(cumulative.size() == bounds.size() + 1);
  double rank = quantile * static_cast<double>(cumulative.back());
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(cumulative[i]) < rank) continue;
    double lower = i == 0 ? 0.0 : bounds[i - 1];
    uint64_t below = i == 0 ? 0 : cumulative[i - 1];
    uint64_t inside = cumulative[i] - below;
    if (inside == 0) return lower;
    return lower + (bounds[i] - lower) * (rank - static_cast<double>(below)) / static_cast<double>(inside);
  }
  return bounds.empty() ? std::nullopt : std::optional<double>(bounds.back());
}

std::string ProxyMetrics::statusJson(const ProxySnapshot& snapshot) {
  const std::vector<double>& bounds = durationBuckets();
  picojson::array bucket_bounds;
  for (double bound : bounds) bucket_bounds.push_back(number(bound));
  bucket_bounds.push_back(picojson::value("+Inf"));

  picojson::array workers;
  for (const WorkerSnapshot& worker : snapshot.workers) {
    picojson::object item;
    item["name"] = picojson::value(worker.name);
    item["state"] = picojson::value(worker.state);
    item["up"] = picojson::value(stateIsUp(worker.state));
    item["pid"] = number(worker.pid);
    item["uptime_seconds"] = worker.uptime_seconds >= 0 ? number(std::floor(worker.uptime_seconds)) : picojson::value();
    item["sessions"] = number(static_cast<double>(worker.sessions));
    item["in_flight"] = number(worker.in_flight);
    item["queued"] = number(static_cast<double>(worker.queued));
    item["restarts"] = number(static_cast<double>(worker.restarts));

    // The same series /metrics exports: requests by code, summed here.
    double requests = 0;
    double errors = 0;
    for (const auto& [key, counter] : request_series_) {
      if (key.first != worker.name) continue;
      requests += counter->Value();
      if (key.second >= 500 && key.second <= 599) errors += counter->Value();
    }
    item["requests"] = number(requests);
    item["errors_5xx"] = number(errors);

    std::vector<uint64_t> cumulative(bounds.size() + 1, 0);
    auto histogram = duration_series_.find(worker.name);
    if (histogram != duration_series_.end()) {
      const auto collected = histogram->second->Collect().histogram;
      for (size_t i = 0; i < collected.bucket.size() && i < cumulative.size(); ++i) {
        cumulative[i] = collected.bucket[i].cumulative_count;
      }
    }
    picojson::array counts;
    for (uint64_t count : cumulative) counts.push_back(number(static_cast<double>(count)));
    item["duration_counts"] = picojson::value(counts);
    auto p99 = histogramQuantile(0.99, bounds, cumulative);
    item["p99_seconds"] = p99 ? number(*p99) : picojson::value();

    std::optional<ProcessStats> stats;
    if (worker.pid > 0) stats = readProcessStats(worker.pid);
    item["cpu_seconds"] = stats ? number(stats->cpu_seconds) : picojson::value();
    item["resident_memory_bytes"] = stats ? number(static_cast<double>(stats->resident_bytes)) : picojson::value();
    workers.emplace_back(std::move(item));
  }

  picojson::object document;
  document["duration_buckets"] = picojson::value(bucket_bounds);
  document["workers"] = picojson::value(workers);
  document["client_connections"] = number(static_cast<double>(snapshot.client_connections));
  return picojson::value(document).serialize() + "\n";
}

std::string ProxyMetrics::exposition(const ProxySnapshot& snapshot) {
  // Each worker's connect-error series exists from its first scrape, at 0.
  for (const WorkerSnapshot& worker : snapshot.workers) {
    counterFor(connect_errors_, connect_error_series_, "worker", worker.name);
  }
  std::vector<MetricFamily> families = registry_->Collect();

  Built up("stickyproxy_worker_up", "1 when the worker takes requests (ready or draining), 0 otherwise",
           MetricType::Gauge);
  Built state("stickyproxy_worker_state", "1 for the worker's current state, 0 for the others", MetricType::Gauge);
  Built restarts("stickyproxy_worker_restarts_total", "Times the worker's process exited and was started again",
                 MetricType::Counter);
  Built sessions("stickyproxy_sessions", "Distinct session keys pinned to the worker and active within the session "
                 "idle window", MetricType::Gauge);
  Built in_flight("stickyproxy_in_flight_requests", "Requests being forwarded to the worker", MetricType::Gauge);
  Built queued("stickyproxy_queued_requests", "Requests waiting for a free slot on the worker", MetricType::Gauge);
  Built cpu("stickyproxy_worker_cpu_seconds_total", "User and system CPU time of the worker's current process",
            MetricType::Counter);
  Built memory("stickyproxy_worker_resident_memory_bytes", "Resident memory of the worker's current process",
               MetricType::Gauge);
  for (const WorkerSnapshot& worker : snapshot.workers) {
    up.add({{"worker", worker.name}}, stateIsUp(worker.state) ? 1 : 0);
    for (const std::string& name : worker_states_) {
      state.add({{"worker", worker.name}, {"state", name}}, name == worker.state ? 1 : 0);
    }
    restarts.add({{"worker", worker.name}}, static_cast<double>(worker.restarts));
    sessions.add({{"worker", worker.name}}, static_cast<double>(worker.sessions));
    in_flight.add({{"worker", worker.name}}, worker.in_flight);
    queued.add({{"worker", worker.name}}, static_cast<double>(worker.queued));
    // A worker without a process has no series: a counter of 0 would read as a reset.
    if (worker.pid > 0) {
      if (auto stats = readProcessStats(worker.pid)) {
        cpu.add({{"worker", worker.name}}, stats->cpu_seconds);
        memory.add({{"worker", worker.name}}, static_cast<double>(stats->resident_bytes));
      }
    }
  }
  Built connections("stickyproxy_client_connections", "Open client connections", MetricType::Gauge);
  connections.add({}, static_cast<double>(snapshot.client_connections));
  Built received("stickyproxy_received_bytes_total", "Bytes received from clients", MetricType::Counter);
  received.add({}, static_cast<double>(snapshot.received_bytes));
  Built sent("stickyproxy_sent_bytes_total", "Bytes sent to clients", MetricType::Counter);
  sent.add({}, static_cast<double>(snapshot.sent_bytes));

  Built tracked("stickyproxy_tracked_sessions", "Sessions the proxy keeps in memory (recent and moved)",
                MetricType::Gauge);
  tracked.add({}, static_cast<double>(snapshot.tracked_sessions));
  Built moved("stickyproxy_moved_sessions", "Sessions moved off a worker that the proxy remembers (saved to disk)",
              MetricType::Gauge);
  moved.add({}, static_cast<double>(snapshot.moved_sessions));
  Built ceiling("stickyproxy_max_sessions", "The ceiling on remembered sessions (routing.max_sessions)",
                MetricType::Gauge);
  ceiling.add({}, static_cast<double>(snapshot.max_sessions));
  Built evictions("stickyproxy_session_evictions_total",
                  "Remembered sessions dropped at the ceiling (their cookies still route them)", MetricType::Counter);
  evictions.add({}, static_cast<double>(snapshot.session_evictions));
  Built clients("stickyproxy_client_table_entries", "Client addresses the per-client limits remember",
                MetricType::Gauge);
  clients.add({}, static_cast<double>(snapshot.client_table_entries));
  Built client_evictions("stickyproxy_client_table_evictions_total",
                         "Clients forgotten at the client table's ceiling (their rate starts afresh)",
                         MetricType::Counter);
  client_evictions.add({}, static_cast<double>(snapshot.client_table_evictions));
  Built untracked("stickyproxy_client_table_untracked_total",
                  "Connections and requests let through unlimited because the client table was full of busy clients",
                  MetricType::Counter);
  untracked.add({}, static_cast<double>(snapshot.client_table_untracked));
  Built replay_bytes("stickyproxy_retry_buffer_bytes",
                     "Memory of the request bodies kept for a replay, all requests together (limits.retry_buffer_total)",
                     MetricType::Gauge);
  replay_bytes.add({}, static_cast<double>(snapshot.retry_buffer_bytes));

  for (Built* built : {&up, &state, &restarts, &sessions, &in_flight, &queued, &cpu, &memory, &connections, &received,
                       &sent, &tracked, &moved, &ceiling, &evictions, &clients, &client_evictions, &untracked,
                       &replay_bytes}) {
    families.push_back(std::move(built->family));
  }

  if (auto self = readProcessStats(0)) {
    Built process_cpu("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                      MetricType::Counter);
    process_cpu.add({}, self->cpu_seconds);
    families.push_back(std::move(process_cpu.family));
    Built resident("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge);
    resident.add({}, static_cast<double>(self->resident_bytes));
    families.push_back(std::move(resident.family));
  }
  if (auto fds = countOpenFds()) {
    Built open_fds("process_open_fds", "Number of open file descriptors.", MetricType::Gauge);
    open_fds.add({}, static_cast<double>(*fds));
    families.push_back(std::move(open_fds.family));
  }
  if (auto limit = maxOpenFds()) {
    Built max_fds("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge);
    max_fds.add({}, static_cast<double>(*limit));
    families.push_back(std::move(max_fds.family));
  }
  // The start time never changes: read it once.
  static const std::optional<double> kStartTime = readProcessStartTime();
  if (const auto& start = kStartTime) {
    Built start_time("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                     MetricType::Gauge);
    start_time.add({}, *start);
    families.push_back(std::move(start_time.family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace stickyproxy
