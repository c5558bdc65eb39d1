#include "proxy/core/proxy.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <picojson.h>

#include "proxy/admin/admin_commands.h"
#include "proxy/admin/admin_server.h"
#include "proxy/core/access_log.h"
#include "proxy/core/health_checker.h"
#include "proxy/core/proxy_request.h"
#include "proxy/net/file_util.h"

namespace stickyproxy {

namespace {
// How often starting workers are probed: readiness should be noticed quickly.
constexpr std::chrono::milliseconds kStartingProbeInterval{100};
constexpr std::chrono::milliseconds kHealthTick{50};
// How often the session table's active counts and expiry catch up with the clock.
constexpr std::chrono::seconds kExpireInterval{1};
constexpr std::chrono::milliseconds kDrainTick{100};
constexpr const char* kWorkerStatesFormat = "stickyproxy-worker-states";

std::vector<std::string> workerNames(const Config& config) {
  std::vector<std::string> names;
  for (const WorkerConfig& worker : config.workers) names.push_back(worker.name);
  return names;
}

// Every name workerStateName() gives, for stickyproxy_worker_state: walks the enumerators from 0
// until the name is "unknown", so that states added to WorkerState appear without a change here
// (the enumerators must stay contiguous from 0).
std::vector<std::string> workerStateNames() {
  constexpr int kMaxStates = 64;
  std::vector<std::string> names;
  for (int value = 0; value < kMaxStates; ++value) {
    std::string name = workerStateName(static_cast<WorkerState>(value));
    if (name == "unknown") break;
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

Proxy::Proxy(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(std::move(config)),
      metrics_(std::make_unique<ProxyMetrics>(workerStateNames())),
      sessions_(config_.routing.session_idle, config_.routing.moved_key_idle, config_.routing.max_sessions),
      health_timer_(loop),
      startup_timer_(loop),
      session_saver_(std::make_unique<SessionSaver>(loop, &sessions_, stateFilePath())),
      expire_timer_(loop),
      drain_timer_(loop) {
  for (const WorkerConfig& worker : config_.workers) {
    workers_[worker.name] = std::make_shared<Worker>(loop_, worker, config_);
  }
  router_ = std::make_unique<Router>(Ring::build(workerNames(config_), config_.routing.virtual_nodes), &sessions_,
                                     [this](const std::string& name) { return availabilityOf(name); });
}

Proxy::~Proxy() {
  *alive_ = false;
  metrics_server_.reset();
  admin_.reset();
  admin_commands_.reset();
  server_.reset();
}

Availability Proxy::availabilityOf(const std::string& name) const {
  auto it = workers_.find(name);
  if (it == workers_.end()) return Availability::kDown;
  if (restarting_in_place_.count(name) > 0) return Availability::kPaused;
  if (!it->second->up()) return Availability::kDown;
  if (admin_evicted_.count(name) > 0) return Availability::kEvicted;
  return it->second->ready() ? Availability::kReady : Availability::kDraining;
}

const char* Proxy::moveReason(const std::string& name) const {
  auto it = workers_.find(name);
  if (it == workers_.end()) return "removed";
  if (!it->second->up()) return it->second->downCause();
  if (admin_evicted_.count(name) > 0) return "evict";
  return it->second->ready() ? "unavailable" : "drain";
}

bool Proxy::loadCookieSigner() {
  std::string error;
  std::optional<std::vector<std::string>> secrets = loadCookieSecrets(config_.routing.secret_file, true, &error);
  if (!secrets) {
    logError("routing secret: " + error);
    return false;
  }
  cookie_signer_ = std::make_shared<const CookieSigner>(std::move(*secrets));
  return true;
}

std::string Proxy::stateFilePath() const { return config_.state_dir + "/moved-keys.json"; }

ServerOptions Proxy::serverOptions() const {
  ServerOptions options;
  options.limits.max_request_line = config_.limits.max_request_line;
  options.limits.max_head_bytes = config_.limits.max_header_bytes;
  options.limits.max_headers = config_.limits.max_headers;
  options.limits.max_body = config_.limits.max_body;
  options.header_timeout = config_.timeouts.client_header;
  options.body_idle_timeout = config_.timeouts.client_body_idle;
  options.keepalive_timeout = config_.timeouts.keepalive_idle;
  options.write_high_water = config_.limits.write_buffer_high;
  options.max_connections = config_.limits.max_client_connections;
  options.on_protocol_error = [this](const Endpoint& peer, int status, const std::string& reason) {
    metrics_->requestRefused(status);
    AccessRecord record;
    record.time = std::chrono::system_clock::now();
    record.client = peer.host().empty() ? "unix" : peer.host();
    record.method = "-";
    record.path = "-";
    record.status = status;
    record.note = reason;
    writeAccessLog(record);
  };
  return options;
}

void Proxy::start(std::function<void(int status)> listening) {
  on_listening_ = std::move(listening);
  std::error_code ignored;
  std::filesystem::create_directories(config_.state_dir, ignored);
  ::chmod(config_.state_dir.c_str(), 0700);
  for (const WorkerConfig& worker : config_.workers) {
    if (worker.address.kind == Address::Kind::kUnix) {
      std::filesystem::create_directories(std::filesystem::path(worker.address.path).parent_path(), ignored);
    }
  }
  if (!loadCookieSigner()) {
    if (on_listening_) on_listening_(UV_EINVAL);
    return;
  }
  std::string error;
  if (!sessions_.load(stateFilePath(), std::chrono::system_clock::now(), &error)) {
    logError("cannot load " + stateFilePath() + ": " + error + " (starting with no moved keys)");
  } else if (sessions_.movedCount() > 0) {
    logInfo("loaded " + std::to_string(sessions_.movedCount()) + " moved session keys from " + stateFilePath());
  }

  loadWorkerStates();
  startMetrics();

  Supervisor::Callbacks callbacks;
  callbacks.on_spawned = [this](const std::string& name, int pid) { onWorkerSpawned(name, pid); };
  callbacks.on_exited = [this](const std::string& name, int64_t status, int signal) {
    onWorkerExited(name, status, signal);
  };
  callbacks.on_spawn_failed = [this](const std::string& name, int status) {
    logError("worker " + name + " could not be started: " + uvErrorText(status));
  };
  supervisor_ = std::make_unique<Supervisor>(loop_, config_, callbacks);
  supervisor_->startAll();

  health_timer_.startRepeating(kHealthTick, [this] { healthTick(); });
  drain_timer_.startRepeating(kDrainTick, [this] { drainTick(); });
  startAdmin();
  expire_timer_.startRepeating(kExpireInterval, [this] {
    size_t moved_before = sessions_.movedCount();
    sessions_.advance(std::chrono::system_clock::now());
    if (sessions_.movedCount() != moved_before) sessionsChanged();
  });
  startup_timer_.start(config_.supervisor.startup_timeout, [this] {
    for (auto& [name, worker] : workers_) {
      if (!worker->up()) logError("worker " + name + " not ready after the startup timeout; starting without it");
    }
    if (!listening_) {
      listening_ = true;
      server_ = std::make_unique<HttpServer>(loop_, serverOptions(),
                                             [this](const ServerExchangePtr& exchange) { handleRequest(exchange); });
      int status = server_->listen(endpointFor(config_.listen));
      if (on_listening_) on_listening_(status);
    }
  });
}

void Proxy::startMetrics() {
  metrics_server_ = std::make_unique<MetricsServer>(
      loop_, [this] { return metrics_->exposition(metricsSnapshot()); },
      [this] { return metrics_->statusJson(metricsSnapshot()); });
  int status = metrics_server_->listen(endpointFor(config_.metrics_listen));
  if (status != 0) {
    logError("cannot listen for metrics on " + config_.metrics_listen.toString() + ": " + uvErrorText(status) +
             " (running without /metrics)");
    metrics_server_.reset();
    return;
  }
  logInfo("metrics on http://" + metrics_server_->boundEndpoint().toString() + "/metrics");
}

ProxySnapshot Proxy::metricsSnapshot() const {
  ProxySnapshot snapshot;
  std::map<std::string, size_t> active = sessions_.activeSessionsPerWorker();
  auto steady_now = std::chrono::steady_clock::now();
  for (const auto& [name, worker] : workers_) {
    WorkerSnapshot entry;
    entry.name = name;
    entry.state = workerStateName(worker->state());
    entry.pid = worker->pid();
    if (worker->up()) {
      const WorkerProcess* process = supervisor_ ? std::as_const(*supervisor_).find(name) : nullptr;
      auto since = process != nullptr && process->running() ? process->startedAt() : worker->stateSince();
      entry.uptime_seconds = std::chrono::duration<double>(steady_now - since).count();
    }
    entry.restarts = worker->counters().restarts;
    auto sessions = active.find(name);
    entry.sessions = sessions == active.end() ? 0 : sessions->second;
    entry.in_flight = worker->admission().inFlight();
    entry.queued = worker->admission().queued();
    snapshot.workers.push_back(std::move(entry));
  }
  snapshot.tracked_sessions = sessions_.size();
  snapshot.moved_sessions = sessions_.movedCount();
  snapshot.max_sessions = sessions_.maxEntries();
  snapshot.session_evictions = sessions_.evictions();
  if (server_) {
    snapshot.client_connections = server_->connectionCount();
    snapshot.received_bytes = server_->bytesReceived();
    snapshot.sent_bytes = server_->bytesSent();
  }
  return snapshot;
}

void Proxy::maybeStartListening() {
  if (listening_ || shutting_down_) return;
  for (auto& [name, worker] : workers_) {
    if (!worker->up()) return;
  }
  listening_ = true;
  startup_timer_.stop();
  server_ = std::make_unique<HttpServer>(loop_, serverOptions(),
                                         [this](const ServerExchangePtr& exchange) { handleRequest(exchange); });
  int status = server_->listen(endpointFor(config_.listen));
  if (status == 0) {
    logInfo("listening on " + server_->boundEndpoint().toString() + " with " + std::to_string(workers_.size()) +
            " workers ready");
  }
  if (on_listening_) on_listening_(status);
}

void Proxy::handleRequest(const ServerExchangePtr& exchange) {
  auto request = std::make_shared<ProxyRequest>(*this, exchange);
  exchange->setHandler(request);
  request->start();
}

std::shared_ptr<Worker> Proxy::sharedWorker(const std::string& name) {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second;
}

Worker* Proxy::findWorker(const std::string& name) {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second.get();
}

void Proxy::onWorkerSpawned(const std::string& name, int pid) {
  Worker* worker = findWorker(name);
  if (worker == nullptr) return;
  worker->setPid(pid);
  // The supervisor spawns with the latest config: from here on the proxy talks to that.
  if (worker->pendingConfig()) worker->commitPending();
  if (worker->state() == WorkerState::kDown) worker->setState(WorkerState::kStarting);
  next_probe_[name] = std::chrono::steady_clock::now();
}

void Proxy::onWorkerExited(const std::string& name, int64_t status, int signal) {
  Worker* worker = findWorker(name);
  if (worker == nullptr) return;
  worker->setPid(0);
  if (!shutting_down_) worker->counters().restarts++;
  markDown(*worker, "process exited: " + describeExit(status, signal), "death");
}

void Proxy::markDown(Worker& worker, const std::string& reason, const char* cause) {
  bool was_down = worker.state() == WorkerState::kDown;
  worker.setState(WorkerState::kDown);
  worker.setDownCause(cause);
  if (shutting_down_) return;
  // Requests waiting for this worker go to their sessions' new pins now, not after a timeout,
  // unless they wait for its restart in place.
  if (restarting_in_place_.count(worker.name()) == 0) worker.admission().abandonQueue();
  if (was_down) return;
  // Its sessions move on their next request, each announced there: a session that makes none
  // before the worker is back stays where its files are.
  logError("worker " + worker.name() + " is down (" + reason + "); its " +
           std::to_string(sessions_.activeSessionsOf(worker.name())) +
           " active sessions move to other workers on their next request");
}

void Proxy::markReady(Worker& worker) {
  if (restart_pending_.erase(worker.name()) > 0) admin_evicted_.erase(worker.name());
  bool drain = adminDraining(worker.name());
  worker.setState(drain ? WorkerState::kDraining : WorkerState::kReady);
  logInfo("worker " + worker.name() + " is ready" + (worker.pid() != 0 ? " (pid " + std::to_string(worker.pid()) + ")" : "") +
          (drain ? "; draining, as the admin asked" : ""));
  maybeStartListening();
}

void Proxy::noteConnectFailure(Worker& worker, const std::string& reason) {
  worker.counters().connect_failures++;
  metrics_->upstreamConnectError(worker.name());
  if (worker.up() && !probing_[worker.name()]) {
    // A probe decides: the failure may be this connection's alone (a full backlog, a reset).
    next_probe_[worker.name()] = std::chrono::steady_clock::now();
    logInfo("worker " + worker.name() + ": " + reason + "; probing it now");
  }
}

void Proxy::probePendingAddress(Worker& worker) {
  std::optional<Endpoint> pending = worker.pendingEndpoint();
  if (!pending || worker.supervised() || !probing_pending_.insert(worker.name()).second) return;
  std::string name = worker.name();
  std::weak_ptr<Worker> weak = sharedWorker(name);
  probeOnce(loop_, *pending, config_.health_check.path, config_.health_check.timeout,
            [this, weak, name, alive = alive_](bool healthy, const std::string&) {
              if (!*alive) return;
              probing_pending_.erase(name);
              std::shared_ptr<Worker> probed = weak.lock();
              if (!probed || !healthy || shutting_down_ || !probed->pendingEndpoint()) return;
              probed->commitPending();
              logInfo("worker " + name + " now at " + probed->config().address.toString() +
                      " (it answered its health check there)");
            });
}

void Proxy::healthTick() {
  auto now = std::chrono::steady_clock::now();
  for (auto& [name, worker_ptr] : workers_) {
    Worker& worker = *worker_ptr;
    if (worker.pendingEndpoint() && (next_pending_probe_[name] <= now)) {
      next_pending_probe_[name] = now + config_.health_check.interval;
      probePendingAddress(worker);
    }
    // A supervised worker without a process has nothing to probe: its respawn resets it.
    if (worker.supervised() && worker.pid() == 0) continue;
    if (probing_[name]) continue;
    auto due = next_probe_.find(name);
    if (due != next_probe_.end() && now < due->second) continue;
    auto interval = worker.state() == WorkerState::kStarting ? kStartingProbeInterval : config_.health_check.interval;
    next_probe_[name] = now + interval;
    probing_[name] = true;
    std::string worker_name = name;
    probeOnce(loop_, worker.endpoint(), config_.health_check.path, config_.health_check.timeout,
              [this, worker_name, alive = alive_](bool healthy, const std::string& reason) {
                if (!*alive) return;
                probing_[worker_name] = false;
                Worker* probed = findWorker(worker_name);
                if (probed == nullptr || shutting_down_) return;
                if (healthy) {
                  if (probed->observeSuccess(config_.health_check.rise)) markReady(*probed);
                } else if (probed->observeFailure(config_.health_check.fall)) {
                  markDown(*probed, "health check failed: " + reason, "unhealthy");
                }
              });
  }
}

void Proxy::sessionsChanged() { session_saver_->changed(); }

void Proxy::movedSessionUsed() { session_saver_->touched(); }

void Proxy::shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logInfo("shutting down: finishing requests in flight");
  health_timer_.stop();
  startup_timer_.stop();
  expire_timer_.stop();
  if (metrics_server_) metrics_server_->shutdown(std::chrono::seconds(1), [] {});
  drain_timer_.stop();
  if (admin_) admin_->close();  // removes the socket file
  std::vector<Waiter> waiters = std::move(waiters_);
  waiters_.clear();
  for (Waiter& waiter : waiters) waiter.done("shutting down");
  auto stop_workers = [this, done = std::move(done)]() mutable {
    session_saver_->flush([this, done = std::move(done)]() mutable {
      supervisor_->stopAll([this, done = std::move(done)] {
        for (auto& [name, worker] : workers_) worker->pool().closeIdle();
        logInfo("stopped");
        done();
      });
    });
  };
  if (server_) {
    server_->shutdown(config_.supervisor.stop_grace, std::move(stop_workers));
  } else {
    stop_workers();
  }
}

bool Proxy::reload() {
  ConfigLoadResult result = loadConfig(config_.source_path);
  if (!result.config) {
    for (const ConfigError& error : result.errors) logError(error.toString());
    logError("reload rejected: keeping the running configuration");
    return false;
  }
  Config next = std::move(*result.config);
  auto warnRestart = [&](const char* key, bool changed) {
    if (changed) logError(std::string("reload: ") + key + " changes only on restart; keeping the running value");
  };
  warnRestart("proxy.listen", !(next.listen == config_.listen));
  warnRestart("proxy.metrics_listen", !(next.metrics_listen == config_.metrics_listen));
  warnRestart("proxy.admin_socket", next.admin_socket != config_.admin_socket);
  warnRestart("proxy.admin_group", next.admin_group != config_.admin_group);
  warnRestart("proxy.state_dir", next.state_dir != config_.state_dir);
  next.listen = config_.listen;
  next.metrics_listen = config_.metrics_listen;
  next.admin_socket = config_.admin_socket;
  next.admin_group = config_.admin_group;
  next.state_dir = config_.state_dir;

  bool members_changed = workerNames(next) != workerNames(config_);
  bool vnodes_changed = next.routing.virtual_nodes != config_.routing.virtual_nodes;
  std::vector<std::string> restart = rebuildWorkers(next);
  config_ = std::move(next);
  sessions_.setLimits(config_.routing.session_idle, config_.routing.moved_key_idle, config_.routing.max_sessions);
  loadCookieSigner();  // a secret file that cannot be read keeps the running secrets
  if (members_changed || vnodes_changed) {
    size_t pinned = router_->replaceRing(Ring::build(workerNames(config_), config_.routing.virtual_nodes),
                                         std::chrono::system_clock::now());
    if (pinned > 0) sessionsChanged();
    logInfo("reload: worker set changed; " + std::to_string(pinned) + " live sessions kept on their workers");
  }
  if (server_) server_->setOptions(serverOptions());
  if (admin_) admin_->setIdleTimeout(config_.timeouts.admin_idle);
  supervisor_->applyConfig(config_);
  for (const std::string& name : restart) restartInPlace(name);
  logInfo("configuration reloaded from " + config_.source_path);
  return true;
}

std::vector<std::string> Proxy::rebuildWorkers(const Config& next) {
  std::map<std::string, std::shared_ptr<Worker>> rebuilt;
  std::vector<std::string> restart;
  for (const WorkerConfig& worker_config : next.workers) {
    auto it = workers_.find(worker_config.name);
    if (it == workers_.end()) {
      rebuilt[worker_config.name] = std::make_shared<Worker>(loop_, worker_config, next);
      continue;
    }
    Worker& worker = *it->second;
    worker.applyConfig(worker_config, next);
    if (worker.pendingConfig() && worker.supervised() && worker_config.supervised()) {
      restart.push_back(worker_config.name);
    } else if (worker.pendingConfig() && !worker_config.supervised() && !worker.supervised()) {
      logInfo("reload: worker " + worker_config.name + " moves to " + worker_config.address.toString() +
              " once that answers its health check");
    } else {
      worker.commitPending();  // supervised <-> external: the supervisor starts or stops it
    }
    rebuilt[worker_config.name] = std::move(it->second);
    workers_.erase(it);
  }
  // Workers that left the config: requests still in flight to them hold them; their queued
  // requests go to their sessions' new workers now.
  for (auto& [name, worker] : workers_) {
    worker->setState(WorkerState::kDown);
    worker->setDownCause("removed");
    worker->admission().abandonQueue();
    worker->pool().closeIdle();
    next_probe_.erase(name);
    probing_pending_.erase(name);
    admin_evicted_.erase(name);
    restart_pending_.erase(name);
    restarting_in_place_.erase(name);
  }
  workers_ = std::move(rebuilt);
  return restart;
}

void Proxy::restartInPlace(const std::string& name) {
  Worker* worker = findWorker(name);
  if (worker == nullptr || supervisor_ == nullptr || !restarting_in_place_.insert(name).second) return;
  logInfo("reload: worker " + name + " restarts with its new command, arguments, environment or address; its " +
          "requests wait for it");
  worker->admission().setHeld(true);
  int old_pid = worker->pid();
  auto finish = [this, name](bool ok, const std::string& account) {
    restarting_in_place_.erase(name);
    Worker* w = findWorker(name);
    if (w == nullptr) return;
    w->admission().setHeld(false);
    if (ok) {
      logInfo("reload: worker " + name + " restarted in place (" + account + ")");
    } else {
      logError("reload: worker " + name + " did not restart in place (" + account + ")");
      if (!w->up()) w->admission().abandonQueue();  // its sessions move, announced
    }
  };
  waitFor(
      [this, name]() -> std::string {
        Worker* w = findWorker(name);
        if (w == nullptr) return "gone";
        return w->admission().inFlight() == 0 ? "idle" : "";
      },
      config_.supervisor.stop_grace,
      [this, name, old_pid, finish](const std::string& idle) {
        WorkerProcess* process = supervisor_ != nullptr ? supervisor_->find(name) : nullptr;
        if (idle == "gone" || idle == "shutting down" || process == nullptr) return finish(false, idle);
        process->restart();
        waitFor(
            [this, name, old_pid]() -> std::string {
              Worker* w = findWorker(name);
              if (w == nullptr) return "gone";
              return w->up() && w->pid() != 0 && w->pid() != old_pid ? "ready" : "";
            },
            config_.supervisor.stop_grace + config_.supervisor.startup_timeout,
            [finish, old_pid](const std::string& outcome) {
              finish(outcome == "ready", "pid " + std::to_string(old_pid) + ": " + outcome);
            });
      });
}


// ---- admin: drain, ready, evict, restart ----

void Proxy::startAdmin() {
  if (config_.admin_socket.empty()) return;
  admin_commands_ = std::make_unique<AdminCommands>(*this);
  AdminServerOptions admin_options;
  admin_options.group = config_.admin_group;
  admin_options.idle_timeout = config_.timeouts.admin_idle;
  admin_ = std::make_unique<AdminServer>(loop_, admin_options,
                                         [this](const std::string& line, AdminServer::Reply reply) {
                                           admin_commands_->execute(line, std::move(reply));
                                         });
  std::string error;
  if (!admin_->listen(config_.admin_socket, &error)) {
    logError("admin socket disabled: " + error);
    admin_.reset();
  } else {
    logInfo("admin socket at " + config_.admin_socket);
  }
}

void Proxy::drainWorker(Worker& worker) {
  if (admin_draining_.insert(worker.name()).second) saveWorkerStates();
  if (worker.ready()) {
    worker.setState(WorkerState::kDraining);
    logInfo("worker " + worker.name() + " is draining (admin): no new sessions");
  }
}

void Proxy::readyWorker(Worker& worker) {
  if (admin_draining_.erase(worker.name()) > 0) saveWorkerStates();
  admin_evicted_.erase(worker.name());
  if (worker.state() == WorkerState::kDraining || worker.state() == WorkerState::kDrained) {
    worker.setState(WorkerState::kReady);
    logInfo("worker " + worker.name() + " is back in rotation (admin)");
  }
}

size_t Proxy::evictWorker(Worker& worker) {
  drainWorker(worker);
  admin_evicted_.insert(worker.name());
  size_t moved = router_->repinSessionsOf(worker.name(), std::chrono::system_clock::now());
  if (moved > 0) sessionsChanged();
  metrics_->sessionsRepinned("evict", moved);
  logInfo("worker " + worker.name() + " evicted (admin): " + std::to_string(moved) + " sessions re-pinned");
  return moved;
}

void Proxy::waitFor(std::function<std::string()> check, Duration timeout,
                    std::function<void(const std::string& outcome)> done) {
  if (shutting_down_) {
    done("shutting down");
    return;
  }
  std::string outcome = check();
  if (!outcome.empty()) {
    done(outcome);
    return;
  }
  waiters_.push_back(Waiter{std::move(check), std::chrono::steady_clock::now() + timeout, std::move(done)});
}

void Proxy::waitDrained(const std::string& name, Duration timeout,
                        std::function<void(const std::string& outcome)> done) {
  waitFor(
      [this, name]() -> std::string {
        Worker* worker = findWorker(name);
        if (worker == nullptr || !adminDraining(name)) return "not draining";
        return worker->state() == WorkerState::kDrained ? "drained" : "";
      },
      timeout, std::move(done));
}

void Proxy::restartWorker(const std::string& name, Duration drain_timeout,
                          std::function<void(bool ok, const std::string& message)> done) {
  Worker* worker = findWorker(name);
  if (worker == nullptr || supervisor_ == nullptr || supervisor_->find(name) == nullptr) {
    done(false, "worker " + name + " is not supervised by this proxy");
    return;
  }
  drainWorker(*worker);
  logInfo("restarting worker " + name + " (admin): draining first");
  waitDrained(name, drain_timeout, [this, name, done](const std::string& drain_outcome) {
    Worker* current = findWorker(name);
    if (drain_outcome == "shutting down" || current == nullptr || supervisor_->find(name) == nullptr) {
      done(false, "restart of " + name + " abandoned: " + (current == nullptr ? "worker removed" : drain_outcome));
      return;
    }
    if (drain_outcome == "not draining") {
      done(false, "restart of " + name + " abandoned: it was put back in rotation meanwhile");
      return;
    }
    // Whatever still uses it moves now, announced, so nothing is sent to a process about to stop.
    size_t moved = evictWorker(*current);
    waitFor(
        [this, name]() -> std::string {
          Worker* w = findWorker(name);
          if (w == nullptr) return "gone";
          return w->admission().inFlight() == 0 && w->admission().queued() == 0 ? "idle" : "";
        },
        config_.supervisor.stop_grace,
        [this, name, done, drain_outcome, moved](const std::string&) {
          Worker* w = findWorker(name);
          WorkerProcess* process = supervisor_ != nullptr ? supervisor_->find(name) : nullptr;
          if (w == nullptr || process == nullptr || shutting_down_) {
            done(false, "restart of " + name + " abandoned: worker removed or proxy stopping");
            return;
          }
          // Back in rotation once the new process answers its health check (markReady); until
          // then the old one gets nothing.
          if (admin_draining_.erase(name) > 0) saveWorkerStates();
          restart_pending_.insert(name);
          int old_pid = w->pid();
          process->restart();
          std::string account = std::string(drain_outcome == "drained" ? "drained" : "drain timed out") + ", " +
                                std::to_string(moved) + " sessions moved, pid " + std::to_string(old_pid);
          waitFor(
              [this, name, old_pid]() -> std::string {
                Worker* again = findWorker(name);
                if (again == nullptr) return "gone";
                return again->ready() && again->pid() != 0 && again->pid() != old_pid ? "ready" : "";
              },
              config_.supervisor.stop_grace + config_.supervisor.startup_timeout,
              [this, name, done, account](const std::string& outcome) {
                Worker* again = findWorker(name);
                if (outcome == "ready" && again != nullptr) {
                  done(true, "restarted " + name + " (" + account + " -> " + std::to_string(again->pid()) + "): ready");
                } else {
                  done(false, "restart of " + name + " did not finish (" + account + "): " + outcome);
                }
              });
        });
  });
}

void Proxy::drainTick() {
  auto now = std::chrono::system_clock::now();
  for (auto& [name, worker] : workers_) {
    if (worker->state() != WorkerState::kDraining && worker->state() != WorkerState::kDrained) continue;
    std::optional<WallTime> last_activity = sessions_.lastActivityOf(name);
    bool idle = worker->admission().inFlight() == 0 && worker->admission().queued() == 0 &&
                (!last_activity || now - *last_activity > config_.routing.drain_idle);
    WorkerState next = idle ? WorkerState::kDrained : WorkerState::kDraining;
    if (next == worker->state()) continue;
    worker->setState(next);
    logInfo("worker " + name + " is " + workerStateName(next) +
            (idle ? " (nothing in flight, no session active within routing.drain_idle)" : " (a session is active again)"));
  }
  auto steady_now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < waiters_.size();) {
    std::string outcome = waiters_[i].check();
    if (outcome.empty() && steady_now >= waiters_[i].deadline) outcome = "timeout";
    if (outcome.empty()) {
      ++i;
      continue;
    }
    auto done = std::move(waiters_[i].done);
    waiters_.erase(waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    done(outcome);  // may add waiters: they are checked from the next tick
  }
}

std::string Proxy::workerStatesPath() const { return config_.state_dir + "/worker-states.json"; }

void Proxy::saveWorkerStates() {
  // {"format": "stickyproxy-worker-states", "version": 1, "draining": ["w2"]}
  picojson::array draining;
  for (const std::string& name : admin_draining_) draining.emplace_back(name);
  picojson::object root;
  root["format"] = picojson::value(kWorkerStatesFormat);
  root["version"] = picojson::value(1.0);
  root["draining"] = picojson::value(draining);
  std::string error;
  if (!writeFileAtomically(workerStatesPath(), picojson::value(root).serialize() + "\n", &error)) {
    logError("cannot save the admin's worker states: " + error);
  }
}

void Proxy::loadWorkerStates() {
  std::string text;
  if (!readWholeFile(workerStatesPath(), &text)) {
    if (errno != ENOENT) logError("cannot read " + workerStatesPath() + ": " + errnoText(errno));
    return;
  }
  picojson::value root;
  std::string parse_error;
  try {
    picojson::parse(root, text.begin(), text.end(), &parse_error);
  } catch (const std::exception& e) {
    parse_error = e.what();
  }
  const picojson::value* draining = nullptr;
  if (parse_error.empty() && root.is<picojson::object>()) {
    const picojson::object& top = root.get<picojson::object>();
    auto format = top.find("format");
    auto list = top.find("draining");
    if (format != top.end() && format->second.is<std::string>() &&
        format->second.get<std::string>() == kWorkerStatesFormat && list != top.end() &&
        list->second.is<picojson::array>()) {
      draining = &list->second;
    }
  }
  if (draining == nullptr) {
    logError("ignoring " + workerStatesPath() + ": not a worker-states file" +
             (parse_error.empty() ? "" : " (" + parse_error + ")") + "; every worker starts in rotation");
    return;
  }
  for (const picojson::value& name : draining->get<picojson::array>()) {
    if (name.is<std::string>() && config_.findWorker(name.get<std::string>()) != nullptr) {
      admin_draining_.insert(name.get<std::string>());
      logInfo("worker " + name.get<std::string>() + " stays out of rotation (drained by the admin before)");
    }
  }
}

}  // namespace stickyproxy
