// The proxy: wires the public listener, the workers (supervised or external) and their rooms
// (health, operations, routing state), dispatches requests, and reloads the configuration.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics/metrics_server.h"
#include "metrics/proxy_metrics.h"
#include "proxy/config/config.h"
#include "proxy/core/access_log.h"
#include "proxy/core/client_limiter.h"
#include "proxy/core/handover.h"
#include "proxy/core/replay_buffer.h"
#include "proxy/core/routing_state.h"
#include "proxy/core/tls_termination.h"
#include "proxy/core/worker.h"
#include "proxy/core/worker_control.h"
#include "proxy/core/worker_health.h"
#include "proxy/core/worker_operations.h"
#include "proxy/http/http_server.h"
#include "proxy/net/timer.h"
#include "proxy/routing/ring.h"
#include "proxy/routing/router.h"
#include "proxy/routing/routing_cookie.h"
#include "proxy/routing/session_table.h"
#include "proxy/supervisor/supervisor.h"

namespace stickyproxy {

// Not thread-safe: everything runs on `loop`'s thread. `loop` (with a LoopContext) must
// outlive the Proxy. The admin socket drives it through WorkerControl.
class Proxy final : public WorkerControl {
 public:
  Proxy(uv_loop_t* loop, Config config);
  ~Proxy() override;
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds the public listeners (and the metrics one), starts the workers and health checks, and
  // accepts on the public listeners once every worker is ready (or the startup timeout passed):
  // `listening` then gets 0 or a libuv error code. Before it, connections are refused. Returns
  // false, after `listening(status)`, when the routing secrets, the certificates or a bind fail;
  // on true every socket is bound, so that a process started as root may leave root then.
  // With `handed` (a binary upgrade, see handover.h) the sockets and worker processes of a
  // predecessor are taken where the config still has them, instead of binding and spawning.
  bool start(std::function<void(int status)> listening, HandoverState* handed = nullptr);
  // Writes the routing state a successor reads at its start, then `done`.
  void saveRoutingState(std::function<void()> done) { routing_state_.flush(std::move(done)); }
  // The successor did not take over: changes are saved again.
  void resumeSavingRoutingState() { routing_state_.resumeSaving(); }
  // For a successor: the sockets (without the admin socket) and worker processes to hand over.
  HandoverState handoverState() const;
  // The successor took over: stop accepting (leaving the sockets to it), let the workers go
  // without signalling them, finish the requests in flight (an idle keep-alive client's next
  // request is answered, with "Connection: close"), then `done`.
  void handOver(std::function<void()> done);
  // Graceful stop: no new connections, in-flight requests finish (up to the workers' stop
  // grace), the moved-keys table is saved, workers get SIGTERM then SIGKILL. `done` runs last.
  void shutdown(std::function<void()> done);
  // Re-reads the config file. On errors prints them (as `-t` does), keeps the running config
  // and returns false. Never drops a connection; moves no session.
  bool reload() override;
  // Called with the new config after each reload that took effect.
  void setReloadListener(std::function<void(const Config& config)> listener) {
    on_reloaded_ = std::move(listener);
  }
  // The live state the metrics mirror (and systemd's STATUS line), for one look.
  ProxySnapshot metricsSnapshot() const;

  // --- for ProxyRequest ---
  const Config& config() const { return config_; }
  Worker* findWorker(const std::string& name) override;
  // The worker `name` shared: a request keeps it alive after a reload removed it.
  std::shared_ptr<Worker> sharedWorker(const std::string& name);
  // The worker at `index` in the router's ring (RouteDecision::worker_index), shared; null when
  // out of range.
  std::shared_ptr<Worker> sharedWorker(size_t index) const {
    return index < ring_workers_.size() ? ring_workers_[index] : nullptr;
  }
  Router& router() { return *router_; }
  SessionTable& sessions() { return routing_state_.sessions(); }
  const SessionTable& sessions() const override { return routing_state_.sessions(); }
  // Signs and checks routing cookies; null only before start().
  const CookieSigner* cookieSigner() const { return routing_state_.cookieSigner(); }
  uv_loop_t* loop() const { return loop_; }
  // The public listener's bound address (its kernel-chosen port for `listen = ...:0`), once
  // start() returned true; an empty Endpoint before.
  Endpoint listenerEndpoint() const;
  uint64_t nextTicket() { return ++tickets_; }
  // A connection to `worker` failed (refused, reset before any byte, timed out). Counted, and the
  // worker is probed at once; only the probes (or its process's exit) can mark it down.
  void noteConnectFailure(Worker& worker, const std::string& reason);
  // Why sessions leave `worker` now, for stickyproxy_repins_total: "death", "unhealthy",
  // "removed", "evict", "drain" or "unavailable".
  const char* moveReason(const std::string& worker) const { return operations_.moveReason(worker); }
  // A key was moved, pinned, announced or expired: the state file follows within a second.
  void sessionsChanged() { routing_state_.sessionsChanged(); }
  // A moved key's session made a request (its last_seen moved on): the state file follows
  // within half a minute.
  void movedSessionUsed() { routing_state_.movedSessionUsed(); }
  ProxyMetrics& metrics() { return *metrics_; }
  // The budget every request's kept body ([limits] retry_buffer) takes its bytes from.
  ReplayBudget& replayBudget() { return replay_budget_; }
  AccessLog& accessLog() { return *access_log_; }

  // --- WorkerControl, for the admin socket; see WorkerOperations ---
  const WorkerMap& workers() const override { return workers_; }
  const WorkerProcess* process(const std::string& name) const override;
  bool adminDraining(const std::string& name) const override { return operations_.adminDraining(name); }
  void drainWorker(Worker& worker) override { operations_.drainWorker(worker); }
  void readyWorker(Worker& worker) override { operations_.readyWorker(worker); }
  size_t evictWorker(Worker& worker) override { return operations_.evictWorker(worker); }
  void waitDrained(const std::string& name, Duration timeout, WaitDone done) override {
    operations_.waitDrained(name, timeout, std::move(done));
  }
  void restartWorker(const std::string& name, Duration drain_timeout, RestartDone done) override {
    operations_.restartWorker(name, drain_timeout, std::move(done));
  }
  const std::string& configPath() const override { return config_.source_path; }
  void upgrade(RestartDone done) override {
    if (upgrade_handler_) {
      upgrade_handler_(std::move(done));
    } else {
      WorkerControl::upgrade(std::move(done));
    }
  }
  // What the admin command "upgrade" runs (main wires the UpgradeCoordinator).
  void setUpgradeHandler(std::function<void(RestartDone)> handler) { upgrade_handler_ = std::move(handler); }
  // Runs before the public listeners first accept; false keeps them closed and the start fails
  // (a successor whose predecessor did not let go).
  void setAcceptGate(std::function<bool()> gate) { accept_gate_ = std::move(gate); }

 private:
  // Returns free heap to the system (malloc_trim, on the thread pool) when no body is kept any
  // more and the most kept since the last look passed 16 MiB: uploads leave megabytes of freed
  // slabs that glibc would keep resident. Called every 5 s.
  void trimHeapAfterBursts();
  void handleRequest(const ServerExchangePtr& exchange);
  void onWorkerSpawned(const std::string& name, int pid);
  void onWorkerExited(const std::string& name, int64_t status, int signal);
  // `cause` ("death" or "unhealthy") labels the moves of its sessions in stickyproxy_repins_total.
  void markDown(Worker& worker, const std::string& reason, const char* cause);
  void markReady(Worker& worker);
  void maybeStartListening();
  // Binds the public (and TLS) endpoints; returns 0 or a libuv error code.
  int bindListeners(HandoverState* handed);
  // Adopts the handed workers the config still supervises (before the supervisor starts the
  // rest); stops the others, which nobody would supervise.
  void adoptWorkers(HandoverState& handed);
  // Accepts on the public listeners; `every_worker_ready` says so in the log.
  void startListening(bool every_worker_ready);
  // Answers a plain-HTTP request with a redirect to HTTPS when [tls] redirect_http asks so.
  bool redirectToHttps(const ServerExchangePtr& exchange);
  // Answers 429 when the request's client is over [limits] per_client_rate.
  bool overRateLimit(const ServerExchangePtr& exchange, const std::string& client_text, const ClientKey& client);
  // Logs (at most once per interval) the connections cut at accept for being far over
  // per_client_connections.
  void noteConnectionCut(const Endpoint& peer, std::string_view reason);
  ServerOptions serverOptions();
  static ClientLimits clientLimitsOf(const Config& config);
  // Applies `next`'s workers; returns the supervised ones to restart in place.
  std::vector<std::string> rebuildWorkers(const Config& next);
  // Lines ring_workers_ up with the router's ring (after it or the workers changed).
  void indexWorkers();
  // Moves every session of `name` now (admin evict), announced; returns how many.
  size_t moveSessionsOf(const std::string& name);
  // Opens the metrics listener; a failure is logged, and the proxy runs without metrics.
  void startMetrics(HandoverState* handed);

  // Members are destroyed in reverse order: each reads only members above it, and ~Proxy()
  // first closes the readers of the rest (the metrics server, the client server whose
  // exchanges log into metrics_).
  uv_loop_t* loop_;
  Config config_;
  std::shared_ptr<AccessLog> access_log_;  // stdout, batched per loop iteration
  std::unique_ptr<ProxyMetrics> metrics_;
  RoutingState routing_state_;
  WorkerMap workers_;
  std::unique_ptr<Supervisor> supervisor_;
  WorkerOperations operations_;  // reads workers_, routing_state_ and supervisor_
  std::unique_ptr<Router> router_;
  // The workers in the order of router_->ring()->workerNames(): a worker's index there is its
  // index for routing (availability, admission, pool), stable until the set of workers changes.
  std::vector<std::shared_ptr<Worker>> ring_workers_;
  WorkerHealth health_;  // reads workers_; calls markReady() and markDown()
  std::unique_ptr<TlsTermination> tls_;  // set when [tls] is configured
  ClientLimiter client_limiter_;  // the client server's connections hold entries in it
  ReplayBudget replay_budget_;     // the requests of server_ hold bytes of it
  uint64_t cuts_unlogged_ = 0;    // connections cut at accept since the last log line about them
  std::chrono::steady_clock::time_point cut_logged_at_{};
  std::unique_ptr<HttpServer> server_;
  Timer startup_timer_;
  // Gives the C library's free memory back to the system once a burst of kept upload bodies is
  // over (trimHeapAfterBursts()); unreferenced.
  Timer trim_timer_;
  std::shared_ptr<bool> trimming_ = std::make_shared<bool>(false);  // a trim runs on the thread pool
  std::function<void(int)> on_listening_;
  std::function<void(const Config&)> on_reloaded_;
  std::function<void(RestartDone)> upgrade_handler_;
  std::function<bool()> accept_gate_;
  bool listening_ = false;
  bool shutting_down_ = false;
  uint64_t tickets_ = 0;
  // Last: the metrics server reads the members above while it exists.
  std::unique_ptr<MetricsServer> metrics_server_;
};

}  // namespace stickyproxy
