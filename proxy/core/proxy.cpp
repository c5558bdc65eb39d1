#include "proxy/core/proxy.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "proxy/core/access_log.h"
#include "proxy/core/health_checker.h"
#include "proxy/core/proxy_request.h"

namespace stickyproxy {

namespace {
// How often starting workers are probed: readiness should be noticed quickly.
constexpr std::chrono::milliseconds kStartingProbeInterval{100};
constexpr std::chrono::milliseconds kHealthTick{50};
constexpr std::chrono::milliseconds kSaveDelay{500};
constexpr std::chrono::seconds kExpireInterval{60};

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

std::string describeExit(int64_t status, int signal) {
  if (signal != 0) return "signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit status " + std::to_string(status);
}
}  // namespace

Proxy::Proxy(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(std::move(config)),
      sessions_(config_.routing.session_idle, config_.routing.moved_key_idle),
      health_timer_(loop),
      startup_timer_(loop),
      save_timer_(loop),
      expire_timer_(loop),
      metrics_(std::make_unique<ProxyMetrics>(workerStateNames())) {
  for (const WorkerConfig& worker : config_.workers) {
    workers_[worker.name] = std::make_unique<Worker>(loop_, worker, config_);
  }
  router_ = std::make_unique<Router>(Ring::build(workerNames(config_), config_.routing.virtual_nodes), &sessions_,
                                     [this](const std::string& name) {
                                       auto it = workers_.find(name);
                                       return it != workers_.end() && it->second->ready();
                                     });
}

Proxy::~Proxy() = default;

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
  std::string error;
  if (!sessions_.load(stateFilePath(), std::chrono::system_clock::now(), &error)) {
    logError("cannot load " + stateFilePath() + ": " + error + " (starting with no moved keys)");
  } else if (sessions_.movedCount() > 0) {
    logInfo("loaded " + std::to_string(sessions_.movedCount()) + " moved session keys from " + stateFilePath());
  }

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
  expire_timer_.startRepeating(kExpireInterval, [this] {
    if (sessions_.expire(std::chrono::system_clock::now()) > 0) sessionsChanged();
  });
  startup_timer_.start(config_.supervisor.startup_timeout, [this] {
    for (auto& [name, worker] : workers_) {
      if (!worker->ready()) logError("worker " + name + " not ready after the startup timeout; starting without it");
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
  metrics_server_ = std::make_unique<MetricsServer>(loop_, [this] { return metrics_->exposition(metricsSnapshot()); });
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
  std::map<std::string, size_t> active = sessions_.activeSessionsPerWorker(std::chrono::system_clock::now());
  for (const auto& [name, worker] : workers_) {
    WorkerSnapshot entry;
    entry.name = name;
    entry.state = workerStateName(worker->state());
    entry.pid = worker->pid();
    entry.restarts = worker->counters().restarts;
    auto sessions = active.find(name);
    entry.sessions = sessions == active.end() ? 0 : sessions->second;
    entry.in_flight = worker->admission().inFlight();
    entry.queued = worker->admission().queued();
    snapshot.workers.push_back(std::move(entry));
  }
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
    if (!worker->ready()) return;
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

Worker* Proxy::findWorker(const std::string& name) {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second.get();
}

void Proxy::onWorkerSpawned(const std::string& name, int pid) {
  Worker* worker = findWorker(name);
  if (worker == nullptr) return;
  worker->setPid(pid);
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

void Proxy::markDown(Worker& worker, const std::string& reason, const char* repin_reason) {
  worker.setState(WorkerState::kDown);
  if (shutting_down_) return;
  size_t moved = router_->repinSessionsOf(worker.name(), std::chrono::system_clock::now());
  // Requests waiting for this worker go to their sessions' new pins now, not after a timeout.
  worker.admission().abandonQueue();
  if (moved > 0) {
    metrics_->sessionsRepinned(repin_reason, moved);
    sessionsChanged();
  }
  logError("worker " + worker.name() + " is down (" + reason + "); " + std::to_string(moved) +
           " sessions re-pinned");
}

void Proxy::markReady(Worker& worker) {
  worker.setState(WorkerState::kReady);
  logInfo("worker " + worker.name() + " is ready" + (worker.pid() != 0 ? " (pid " + std::to_string(worker.pid()) + ")" : ""));
  maybeStartListening();
}

void Proxy::noteConnectFailure(Worker& worker, const std::string& reason) {
  worker.counters().connect_failures++;
  metrics_->upstreamConnectError(worker.name());
  if (worker.observeFailure(config_.health_check.fall)) {
    markDown(worker, reason + " (" + std::to_string(config_.health_check.fall) + " failures in a row)");
  }
}

void Proxy::healthTick() {
  auto now = std::chrono::steady_clock::now();
  for (auto& [name, worker_ptr] : workers_) {
    Worker& worker = *worker_ptr;
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
              [this, worker_name](bool healthy, const std::string& reason) {
                probing_[worker_name] = false;
                Worker* probed = findWorker(worker_name);
                if (probed == nullptr || shutting_down_) return;
                if (healthy) {
                  if (probed->observeSuccess(config_.health_check.rise)) markReady(*probed);
                } else if (probed->observeFailure(config_.health_check.fall)) {
                  markDown(*probed, "health check failed: " + reason);
                }
              });
  }
}

void Proxy::sessionsChanged() {
  if (save_timer_.armed()) return;
  save_timer_.start(kSaveDelay, [this] { saveSessions(); });
}

void Proxy::saveSessions() {
  std::string error;
  if (!sessions_.save(stateFilePath(), &error)) logError("cannot save " + stateFilePath() + ": " + error);
}

void Proxy::shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logInfo("shutting down: finishing requests in flight");
  health_timer_.stop();
  startup_timer_.stop();
  expire_timer_.stop();
  if (metrics_server_) metrics_server_->shutdown(std::chrono::seconds(1), [] {});
  auto stop_workers = [this, done = std::move(done)]() mutable {
    save_timer_.stop();
    saveSessions();
    supervisor_->stopAll([this, done = std::move(done)] {
      for (auto& [name, worker] : workers_) worker->pool().closeIdle();
      logInfo("stopped");
      done();
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
  warnRestart("proxy.state_dir", next.state_dir != config_.state_dir);
  next.listen = config_.listen;
  next.metrics_listen = config_.metrics_listen;
  next.admin_socket = config_.admin_socket;
  next.state_dir = config_.state_dir;

  bool members_changed = workerNames(next) != workerNames(config_);
  bool vnodes_changed = next.routing.virtual_nodes != config_.routing.virtual_nodes;
  rebuildWorkers(next);
  config_ = std::move(next);
  sessions_.setIdleWindows(config_.routing.session_idle, config_.routing.moved_key_idle);
  if (members_changed || vnodes_changed) {
    size_t pinned = router_->replaceRing(Ring::build(workerNames(config_), config_.routing.virtual_nodes),
                                         std::chrono::system_clock::now());
    if (pinned > 0) sessionsChanged();
    logInfo("reload: worker set changed; " + std::to_string(pinned) + " live sessions kept on their workers");
  }
  if (server_) server_->setOptions(serverOptions());
  supervisor_->applyConfig(config_);
  logInfo("configuration reloaded from " + config_.source_path);
  return true;
}

void Proxy::rebuildWorkers(const Config& next) {
  std::map<std::string, std::unique_ptr<Worker>> rebuilt;
  for (const WorkerConfig& worker_config : next.workers) {
    auto it = workers_.find(worker_config.name);
    if (it != workers_.end()) {
      it->second->applyConfig(worker_config, next);
      rebuilt[worker_config.name] = std::move(it->second);
      workers_.erase(it);
    } else {
      rebuilt[worker_config.name] = std::make_unique<Worker>(loop_, worker_config, next);
    }
  }
  // Workers that left the config: requests in flight to them hold raw pointers, so keep the
  // objects until the process exits; they no longer receive new requests.
  for (auto& [name, worker] : workers_) {
    worker->setState(WorkerState::kDown);
    retired_workers_.push_back(std::move(worker));
  }
  workers_ = std::move(rebuilt);
}

}  // namespace stickyproxy
