// The proxy: the public listener, the workers (supervised or external), routing, health
// checks, the moved-keys state file and configuration reload.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "metrics/metrics_server.h"
#include "metrics/proxy_metrics.h"
#include "proxy/config/config.h"
#include "proxy/routing/router.h"
#include "proxy/core/session_saver.h"
#include "proxy/core/worker.h"
#include "proxy/http/http_server.h"
#include "proxy/net/timer.h"
#include "proxy/routing/ring.h"
#include "proxy/routing/router.h"
#include "proxy/routing/routing_cookie.h"
#include "proxy/routing/session_table.h"
#include "proxy/supervisor/supervisor.h"

namespace stickyproxy {

class AdminServer;
class AdminCommands;

// Not thread-safe: everything runs on `loop`'s thread. `loop` (with a LoopContext) must
// outlive the Proxy.
class Proxy {
 public:
  Proxy(uv_loop_t* loop, Config config);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Starts the workers and health checks, and opens the public listener once every worker
  // is ready (or the startup timeout passed). `listening` gets 0 or a libuv error code.
  void start(std::function<void(int status)> listening);
  // Graceful stop: no new connections, in-flight requests finish (up to the workers' stop
  // grace), the moved-keys table is saved, workers get SIGTERM then SIGKILL. `done` runs last.
  void shutdown(std::function<void()> done);
  // Re-reads the config file. On errors prints them (as `-t` does), keeps the running config
  // and returns false. Never drops a connection; moves no session.
  bool reload();

  // --- for ProxyRequest ---
  const Config& config() const { return config_; }
  Worker* findWorker(const std::string& name);
  // The worker `name` shared: a request keeps it alive after a reload removed it.
  std::shared_ptr<Worker> sharedWorker(const std::string& name);
  Router& router() { return *router_; }
  SessionTable& sessions() { return sessions_; }
  // Signs and checks routing cookies; null only before start().
  const CookieSigner* cookieSigner() const { return cookie_signer_.get(); }
  uv_loop_t* loop() const { return loop_; }
  uint64_t nextTicket() { return ++tickets_; }
  // A connection to `worker` failed (refused, reset before any byte, timed out). Counted, and the
  // worker is probed at once; only the probes (or its process's exit) can mark it down.
  void noteConnectFailure(Worker& worker, const std::string& reason);
  // Why sessions leave `worker` now, for stickyproxy_repins_total: "death", "unhealthy",
  // "removed", "evict", "drain" or "unavailable".
  const char* moveReason(const std::string& worker) const;
  // A key was moved, pinned, announced or expired: the state file follows within a second.
  void sessionsChanged();
  // A moved key's session made a request (its last_seen moved on): the state file follows
  // within half a minute.
  void movedSessionUsed();
  ProxyMetrics& metrics() { return *metrics_; }

  // --- for the admin socket (proxy/admin) ---
  const std::map<std::string, std::shared_ptr<Worker>>& workers() const { return workers_; }
  // Null before start().
  Supervisor* supervisor() { return supervisor_.get(); }
  // True when the admin has taken `name` out of rotation (drain or evict) and not put it back.
  bool adminDraining(const std::string& name) const { return admin_draining_.count(name) > 0; }
  // Takes `worker` out of rotation for new sessions: draining now if it is up, else as soon as it
  // is. Its active sessions keep reaching it. Persisted in the state directory, so it survives a
  // reload and a proxy restart, until readyWorker().
  void drainWorker(Worker& worker);
  // Puts `worker` back in rotation (ready now if it is up).
  void readyWorker(Worker& worker);
  // drainWorker(), and every session pinned to `worker` leaves it from now on, announced with
  // X-Sticky-Previous-Worker, until readyWorker(). Returns how many the table knew of (moved now).
  size_t evictWorker(Worker& worker);
  // Calls `done` once: "drained" when `name` is drained, "not draining" when it was put back in
  // rotation (or is gone), "timeout" after `timeout`, "shutting down" when the proxy stops.
  void waitDrained(const std::string& name, Duration timeout, std::function<void(const std::string& outcome)> done);
  // Graceful recycle of a supervised worker: drain (waiting up to `drain_timeout`), move its
  // remaining sessions, wait for its requests in flight, SIGTERM (SIGKILL after stop_grace),
  // respawn, and back in rotation once healthy. `done` gets whether it is ready again with a new
  // process, and a one-line account.
  void restartWorker(const std::string& name, Duration drain_timeout,
                     std::function<void(bool ok, const std::string& message)> done);

 private:
  void handleRequest(const ServerExchangePtr& exchange);
  void onWorkerSpawned(const std::string& name, int pid);
  void onWorkerExited(const std::string& name, int64_t status, int signal);
  // `cause` ("death" or "unhealthy") labels the moves of its sessions in stickyproxy_repins_total.
  void markDown(Worker& worker, const std::string& reason, const char* cause);
  void markReady(Worker& worker);
  void healthTick();
  void maybeStartListening();
  std::string stateFilePath() const;
  // Loads (or makes) the routing secrets; false with a logged error when they cannot be had.
  bool loadCookieSigner();
  Availability availabilityOf(const std::string& name) const;
  ServerOptions serverOptions() const;
  // Applies `next`'s workers; returns the supervised ones to restart in place.
  std::vector<std::string> rebuildWorkers(const Config& next);
  // Probes an external worker's new address; it takes effect once that answers.
  void probePendingAddress(Worker& worker);
  // A reload changed how supervised `name` runs: its requests wait (held in its queue) while
  // the requests in flight finish, its process is restarted with the new config, and they go
  // on once it answers. Nobody moves unless it fails to come back.
  void restartInPlace(const std::string& name);
  // Opens the metrics listener; a failure is logged, and the proxy runs without metrics.
  void startMetrics();
  // The live state the metrics mirror, for one scrape.
  ProxySnapshot metricsSnapshot() const;
  // Every 100 ms: draining <-> drained, and the admin's waits.
  void drainTick();
  // Calls `done(outcome)` once `check()` returns a non-empty outcome, or "timeout" at `timeout`.
  void waitFor(std::function<std::string()> check, Duration timeout,
               std::function<void(const std::string& outcome)> done);
  std::string workerStatesPath() const;
  void saveWorkerStates();
  void loadWorkerStates();
  void startAdmin();

  // Members are destroyed in reverse order, and ~Proxy() first closes the readers of the rest
  // (the metrics server, the admin socket, the client server whose exchanges log into metrics_).
  uv_loop_t* loop_;
  Config config_;
  // False once the Proxy is gone: callbacks of probes and timers that may outlive it check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<ProxyMetrics> metrics_;
  SessionTable sessions_;
  std::map<std::string, std::shared_ptr<Worker>> workers_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<HttpServer> server_;
  Timer health_timer_;
  Timer startup_timer_;
  std::unique_ptr<SessionSaver> session_saver_;
  Timer expire_timer_;  // brings the session table's counts up to date
  std::map<std::string, std::chrono::steady_clock::time_point> next_probe_;
  std::map<std::string, bool> probing_;
  std::function<void(int)> on_listening_;
  bool listening_ = false;
  bool shutting_down_ = false;
  uint64_t tickets_ = 0;

  struct Waiter {
    std::function<std::string()> check;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(const std::string& outcome)> done;
  };
  std::set<std::string> admin_draining_;  // persisted in workerStatesPath()
  std::set<std::string> admin_evicted_;   // evicted or restarting: sessions leave until ready
  std::set<std::string> restart_pending_; // restarted by the admin: evicted until the new process is ready
  std::set<std::string> restarting_in_place_;  // see restartInPlace()
  std::set<std::string> probing_pending_;      // an external worker's new address is being probed
  std::map<std::string, std::chrono::steady_clock::time_point> next_pending_probe_;
  std::shared_ptr<const CookieSigner> cookie_signer_;
  std::vector<Waiter> waiters_;
  Timer drain_timer_;
  std::unique_ptr<AdminCommands> admin_commands_;
  std::unique_ptr<AdminServer> admin_;
  // Last: the metrics server reads the members above while it exists.
  std::unique_ptr<MetricsServer> metrics_server_;
};

}  // namespace stickyproxy
