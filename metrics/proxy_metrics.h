// The proxy's Prometheus metrics: counters and histograms updated where events happen, and
// gauges that mirror live state, built from a snapshot at scrape time.
//
// Label values are bounded by the number of workers and by fixed sets of codes and causes:
// never a session, a path or a peer. Requests the proxy answers without a worker (no worker
// ready, a bad request) carry worker="" — worker names cannot be empty (conf/README.md), and
// Prometheus treats an empty label like an absent one.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace stickyproxy {

// One worker's live state at scrape time.
struct WorkerSnapshot {
  std::string name;
  std::string state;  // workerStateName()
  pid_t pid = 0;      // 0: no process known (external worker, or down)
  uint64_t restarts = 0;
  uint64_t sessions = 0;  // distinct keys active within the session idle window
  uint32_t in_flight = 0;
  uint64_t queued = 0;
  // Seconds since its process started (or since it came up, for an external worker); negative
  // while it is not up.
  double uptime_seconds = -1;
};

// The proxy's live state at scrape time.
struct ProxySnapshot {
  std::vector<WorkerSnapshot> workers;
  uint64_t client_connections = 0;
  uint64_t received_bytes = 0;  // from clients, since start
  uint64_t sent_bytes = 0;      // to clients, since start
  uint64_t tracked_sessions = 0;     // entries in the session table (recent and moved)
  uint64_t moved_sessions = 0;       // moved entries (what the state file holds)
  uint64_t max_sessions = 0;         // the table's ceiling
  uint64_t session_evictions = 0;    // entries dropped at the ceiling, since start
  uint64_t client_table_entries = 0;    // clients the per-client limits remember
  uint64_t client_table_evictions = 0;  // clients forgotten at the table's ceiling, since start
  uint64_t client_table_untracked = 0;  // connections or requests let through unlimited: table full of busy clients
  uint64_t retry_buffer_bytes = 0;      // request bodies kept for a replay, all requests together
};

// The `quantile` (0..1) of a Prometheus histogram, interpolated linearly inside the bucket it
// falls in, as PromQL's histogram_quantile() does: `bounds` are the finite upper bounds in
// increasing order and `cumulative` the counts of each bucket plus one for +Inf. Returns the
// highest finite bound when the quantile falls in +Inf, and nullopt for an empty histogram.
std::optional<double> histogramQuantile(double quantile, const std::vector<double>& bounds,
                                        const std::vector<uint64_t>& cumulative);

// Not thread-safe: the proxy's loop thread only (prometheus-cpp's own locks are then
// uncontended).
class ProxyMetrics {
 public:
  // `worker_states`: every name workerStateName() can return, so that each worker exports one
  // stickyproxy_worker_state series per state (1 for the current one).
  explicit ProxyMetrics(std::vector<std::string> worker_states);
  ProxyMetrics(const ProxyMetrics&) = delete;
  ProxyMetrics& operator=(const ProxyMetrics&) = delete;

  // A request finished with `status` (499: the client went away) after `duration_s`.
  // `worker`: the worker of its last attempt, "" when none.
  void requestFinished(std::string_view worker, int status, double duration_s);
  // The HTTP layer refused a request before it was whole (400, 408, 413, 414, 431, 501): counted
  // in stickyproxy_requests_total with worker="", not timed.
  void requestRefused(int status);
  // The proxy answered `status` by itself (502, 503, 504, ...) because of `cause`, a fixed
  // identifier such as "queue_full" or "upstream_response_timeout".
  void proxyError(int status, std::string_view cause);
  // A request goes to another attempt after `cause` ("connect_failed", "connection_lost", ...).
  void retried(std::string_view cause);
  // A connection to `worker` failed (refused, reset, timed out).
  void upstreamConnectError(std::string_view worker);
  // `count` sessions moved to another worker because of `reason` ("death", "unhealthy",
  // "unavailable", "evict", ...).
  void sessionsRepinned(std::string_view reason, uint64_t count);
  // A request's routing cookie was ignored ("forged_cookie": its MAC did not match;
  // "malformed_cookie": not a routing cookie at all); it was treated as a new session.
  void cookieRefused(std::string_view reason);
  // The head classifier found a request `head_class` ("severe", "ambiguous", "acceptable")
  // because of `reason` (a rule label such as "bare_lf"), whether or not it was refused.
  void desyncRequest(std::string_view head_class, std::string_view reason);
  // A TLS connection failed: `reason` is a fixed label ("handshake_failed", "plain_http", ...).
  void tlsError(std::string_view reason);
  // A request was answered 429 by a per-client `limit` ("connections" or "rate").
  void clientLimited(std::string_view limit);
  // A client connection was cut without an answer: "over_limit" (far over per_client_connections)
  // or "send_idle" (the client read nothing of its response for client_send_idle).
  void connectionCut(std::string_view reason);
  // A request body stopped being kept for a replay because it passed `limit`: "request"
  // (limits.retry_buffer) or "total" (limits.retry_buffer_total, all requests' bodies together).
  void replayBodyDropped(std::string_view limit);

  // The Prometheus text format (version 0.0.4) of every family: the counters and histograms
  // above, the gauges from `snapshot`, each worker's CPU and memory from /proc/<pid>, and this
  // process's process_* metrics. Reads a few small /proc files per worker; never blocks
  // otherwise.
  std::string exposition(const ProxySnapshot& snapshot);

  // The status page's document (GET /status.json), from the same series and snapshot as
  // exposition(): one object per worker with its state, pid, uptime, sessions, in flight,
  // queued, requests and 5xx answers (stickyproxy_requests_total summed over codes), restarts,
  // CPU seconds and resident memory (null without a process), the cumulative counts of its
  // request-duration histogram (bounds in "duration_buckets", the last one +Inf) and the p99
  // over its whole life. Rates and recent percentiles are the reader's deltas between polls.
  std::string statusJson(const ProxySnapshot& snapshot);

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Label values whose series exist (at 0) from the start, so that rate() and alert rules see 0
  // rather than no data before the first event. Other values still get a series when they occur.
  static constexpr std::string_view kRepinReasons[] = {"death", "unhealthy", "unavailable", "evict", "drain",
                                                       "removed"};
  static constexpr std::string_view kCookieRefusals[] = {"forged_cookie", "malformed_cookie"};
  static constexpr std::string_view kTlsErrors[] = {"handshake_failed", "plain_http", "protocol_version",
                                                    "no_shared_cipher", "bad_record"};
  static constexpr std::string_view kClientLimits[] = {"connections", "rate"};
  static constexpr std::string_view kConnectionCuts[] = {"over_limit", "send_idle"};
  static constexpr std::string_view kReplayLimits[] = {"request", "total"};
  static constexpr std::string_view kRetryCauses[] = {"connect_failed", "connect_timeout", "connection_lost",
                                                      "worker_down"};
  static constexpr std::pair<int, std::string_view> kProxyErrorCauses[] = {
      {502, "upstream_connect_failed"},   {502, "upstream_connection_lost"}, {502, "upstream_bad_response"},
      {503, "no_ready_worker"},           {503, "queue_full"},               {503, "queue_timeout"},
      {504, "upstream_connect_timeout"},  {504, "upstream_response_timeout"}};

 private:
  prometheus::Counter& errorCounter(int status, std::string_view cause);
  prometheus::Counter& counterFor(prometheus::Family<prometheus::Counter>& family,
                                  std::map<std::string, prometheus::Counter*>& cache, std::string_view label_name,
                                  std::string_view label_value);

  std::vector<std::string> worker_states_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& proxy_errors_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& connect_errors_;
  prometheus::Family<prometheus::Counter>& repins_;
  prometheus::Family<prometheus::Counter>& cookies_refused_;
  prometheus::Family<prometheus::Counter>& desync_requests_;
  prometheus::Family<prometheus::Counter>& tls_errors_;
  prometheus::Family<prometheus::Counter>& client_limited_;
  prometheus::Family<prometheus::Counter>& connections_cut_;
  prometheus::Family<prometheus::Counter>& replay_dropped_;
  // Series looked up once: Family::Add hashes the label set under a lock on every call.
  std::map<std::pair<std::string, int>, prometheus::Counter*> request_series_;
  std::map<std::string, prometheus::Histogram*> duration_series_;
  std::map<std::pair<int, std::string>, prometheus::Counter*> error_series_;
  std::map<std::string, prometheus::Counter*> retry_series_;
  std::map<std::string, prometheus::Counter*> connect_error_series_;
  std::map<std::string, prometheus::Counter*> repin_series_;
  std::map<std::string, prometheus::Counter*> cookie_refusal_series_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> desync_series_;
  std::map<std::string, prometheus::Counter*> tls_error_series_;
  std::map<std::string, prometheus::Counter*> client_limited_series_;
  std::map<std::string, prometheus::Counter*> connection_cut_series_;
  std::map<std::string, prometheus::Counter*> replay_dropped_series_;
};

}  // namespace stickyproxy
