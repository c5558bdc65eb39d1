#include "proxy/core/proxy.h"

#include <malloc.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <utility>

#include "proxy/core/access_log.h"
#include "proxy/core/client_address.h"
#include "proxy/core/proxy_request.h"
#include "proxy/net/background_job.h"
#include "proxy/net/recycling_pool.h"

namespace stickyproxy {

namespace {
constexpr std::chrono::seconds kTrimInterval{5};
constexpr uint64_t kTrimAfter = 16ull * 1024 * 1024;  // bytes of kept bodies at the peak

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
      access_log_(AccessLog::create(loop)),
      metrics_(std::make_unique<ProxyMetrics>(workerStateNames())),
      routing_state_(loop, config_),
      operations_(loop, config_, workers_, routing_state_,
                  [this](const std::string& name) { return moveSessionsOf(name); }),
      health_(loop, config_, workers_,
              WorkerHealth::Callbacks{
                  [this](Worker& worker) { markReady(worker); },
                  [this](Worker& worker, const std::string& reason, const char* cause) {
                    markDown(worker, reason, cause);
                  }}),
      client_limiter_(clientLimitsOf(config_)),
      replay_budget_(config_.limits.retry_buffer_total),
      startup_timer_(loop),
      trim_timer_(loop) {
  for (const WorkerConfig& worker : config_.workers) {
    workers_[worker.name] = std::make_shared<Worker>(loop_, worker, config_);
  }
  router_ = std::make_unique<Router>(Ring::build(workerNames(config_), config_.routing.virtual_nodes),
                                     &routing_state_.sessions(),
                                     [this](size_t index) {
                                       const Worker* worker = ring_workers_[index].get();
                                       return worker != nullptr ? operations_.availability(*worker) : Availability::kDown;
                                     });
  indexWorkers();
}

void Proxy::indexWorkers() {
  const std::vector<std::string>& names = router_->ring()->workerNames();
  ring_workers_.assign(names.size(), nullptr);
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = workers_.find(names[i]);
    if (it != workers_.end()) ring_workers_[i] = it->second;
  }
}

Proxy::~Proxy() {
  metrics_server_.reset();
  server_.reset();
}

ClientLimits Proxy::clientLimitsOf(const Config& config) {
  ClientLimits limits;
  limits.connections = config.limits.per_client_connections;
  limits.rate = config.limits.per_client_rate;
  limits.rate_period = config.limits.per_client_rate_period;
  limits.table_size = config.limits.client_table_size;
  return limits;
}

ServerOptions Proxy::serverOptions() {
  ServerOptions options;
  options.limits.max_request_line = config_.limits.max_request_line;
  options.limits.max_head_bytes = config_.limits.max_header_bytes;
  options.limits.max_headers = config_.limits.max_headers;
  options.limits.max_body = config_.limits.max_body;
  options.header_timeout = config_.timeouts.client_header;
  options.body_idle_timeout = config_.timeouts.client_body_idle;
  options.keepalive_timeout = config_.timeouts.keepalive_idle;
  options.send_idle_timeout = config_.timeouts.client_send_idle;
  options.write_high_water = config_.limits.write_buffer_high;
  options.max_connections = config_.limits.max_client_connections;
  options.limits.desync_mode = config_.desync_mode;
  options.on_tls_error = [this](const Endpoint& peer, std::string_view reason, const std::string& detail) {
    metrics_->tlsError(reason);
    logInfo("TLS connection from " + peer.host() + " failed (" + std::string(reason) + "): " + detail);
  };
  // The ALB's own connections carry many clients: only untrusted peers are limited per address.
  options.admit = [this](const Endpoint& peer) {
    if (config_.limits.per_client_connections == 0 || peerIsTrusted(config_.trusted_proxies, peer)) {
      return ConnectionAdmission::kUncounted;
    }
    return client_limiter_.admitConnection(ClientKey::fromSockaddr(peer.sockaddrPtr()),
                                           std::chrono::steady_clock::now());
  };
  options.release = [this](const Endpoint& peer, ConnectionAdmission admission) {
    client_limiter_.releaseConnection(ClientKey::fromSockaddr(peer.sockaddrPtr()), admission);
  };
  options.on_connection_cut = [this](const Endpoint& peer, std::string_view reason) { noteConnectionCut(peer, reason); };
  options.on_protocol_error = [this](const Endpoint& peer, const ProtocolError& error) {
    metrics_->requestRefused(error.status);
    if (error.status == 429) metrics_->clientLimited("connections");
    if (!error.verdict.compliant()) {
      metrics_->desyncRequest(headClassName(error.verdict.head_class), error.verdict.label());
    }
    AccessRecord record;
    record.time = std::chrono::system_clock::now();
    record.client = peer.host().empty() ? "unix" : peer.host();
    record.method = "-";
    record.path = "-";
    record.status = error.status;
    record.note = error.reason;
    access_log_->write(record);
  };
  return options;
}

Endpoint Proxy::listenerEndpoint() const { return server_ ? server_->boundEndpoint() : Endpoint(); }

bool Proxy::start(std::function<void(int status)> listening, HandoverState* handed) {
  on_listening_ = std::move(listening);
  std::error_code ignored;
  std::filesystem::create_directories(config_.state_dir, ignored);
  ::chmod(config_.state_dir.c_str(), 0700);
  for (const WorkerConfig& worker : config_.workers) {
    if (worker.address.kind == Address::Kind::kUnix) {
      std::filesystem::create_directories(std::filesystem::path(worker.address.path).parent_path(), ignored);
    }
  }
  if (!routing_state_.start()) {
    if (on_listening_) on_listening_(UV_EINVAL);
    return false;
  }
  if (config_.tls.enabled) {
    tls_ = std::make_unique<TlsTermination>(loop_);
    std::string error;
    if (!tls_->load(config_.tls, &error)) {
      logError("tls: " + error);
      if (on_listening_) on_listening_(UV_EINVAL);
      return false;
    }
  }
  startMetrics(handed);
  if (int status = bindListeners(handed); status != 0) {
    if (on_listening_) on_listening_(status);
    return false;
  }

  Supervisor::Callbacks callbacks;
  callbacks.on_spawned = [this](const std::string& name, int pid) { onWorkerSpawned(name, pid); };
  callbacks.on_exited = [this](const std::string& name, int64_t status, int signal) {
    onWorkerExited(name, status, signal);
  };
  callbacks.on_spawn_failed = [](const std::string& name, int status) {
    logError("worker " + name + " could not be started: " + uvErrorText(status));
  };
  supervisor_ = std::make_unique<Supervisor>(loop_, config_, callbacks);
  // The admin's drained workers are known before any worker comes up.
  operations_.start(supervisor_.get());
  if (handed != nullptr) adoptWorkers(*handed);
  supervisor_->startAll();
  if (handed != nullptr) {
    // A worker whose command, arguments or address the new config changed restarts in place.
    for (const HandedWorker& worker : handed->workers) {
      const WorkerProcess* process = supervisor_->find(worker.name);
      const WorkerConfig* wanted = nullptr;
      for (const WorkerConfig& candidate : config_.workers) {
        if (candidate.name == worker.name) wanted = &candidate;
      }
      if (process == nullptr || !process->adopted() || wanted == nullptr) continue;
      if (worker.argv != WorkerProcess::expandedArgs(*wanted, config_.state_dir) ||
          worker.address != wanted->address.toString()) {
        operations_.restartInPlace(worker.name);
      }
    }
  }

  health_.start();
  trim_timer_.startRepeating(kTrimInterval, [this] { trimHeapAfterBursts(); });
  trim_timer_.unref();
  startup_timer_.start(config_.supervisor.startup_timeout, [this] {
    for (auto& [name, worker] : workers_) {
      if (!worker->up()) logError("worker " + name + " not ready after the startup timeout; starting without it");
    }
    if (!listening_) startListening(false);
  });
  return true;
}

void Proxy::adoptWorkers(HandoverState& handed) {
  for (const HandedWorker& worker : handed.workers) {
    auto it = workers_.find(worker.name);
    if (it != workers_.end() && supervisor_->adopt(worker.name, worker.pid)) {
      it->second->counters().restarts = worker.restarts;
      continue;
    }
    // Its predecessor let it go: stopped here, or it would run unsupervised for ever.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, worker.pid, 0));
    if (pidfd < 0) continue;  // already gone
    logInfo("worker " + worker.name + " (pid " + std::to_string(worker.pid) +
            ") is not supervised by the new configuration: sending it SIGTERM");
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
    ::close(pidfd);
  }
}

HandoverState Proxy::handoverState() const {
  HandoverState state;
  state.pid = ::getpid();
  state.version = STICKYPROXY_VERSION;
  if (server_) {
    for (const HttpServer::BoundSocket& socket : server_->boundSockets()) {
      state.sockets.push_back(HandedSocket{socket.tls ? "tls" : "listen", socket.endpoint, socket.fd});
    }
  }
  if (metrics_server_ && metrics_server_->listeningFd() >= 0) {
    state.sockets.push_back(HandedSocket{"metrics", metrics_server_->boundEndpoint(), metrics_server_->listeningFd()});
  }
  if (supervisor_) {
    for (const WorkerProcess* process : supervisor_->workers()) {
      auto it = workers_.find(process->name());
      if (!process->running() || it == workers_.end()) continue;
      const WorkerConfig& config = it->second->config();
      state.workers.push_back(HandedWorker{process->name(), process->pid(), config.address.toString(),
                                           WorkerProcess::expandedArgs(config, config_.state_dir),
                                           it->second->counters().restarts});
    }
  }
  return state;
}

void Proxy::handOver(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logInfo("handed over to the new process: finishing requests in flight, leaving the workers running");
  health_.stop();
  startup_timer_.stop();
  trim_timer_.stop();
  routing_state_.stop();
  operations_.stop();
  if (supervisor_) supervisor_->releaseAll();
  if (metrics_server_) metrics_server_->handOver(std::chrono::seconds(1), [] {});
  // Idle keep-alive clients get until their keep-alive timeout to send one more request; a
  // request in flight gets as long as a worker may take to answer.
  auto grace = std::max(config_.timeouts.keepalive_idle, config_.timeouts.upstream_response);
  auto finished = [this, done = std::move(done)] {
    for (auto& [name, worker] : workers_) worker->pool().closeIdle();
    logInfo("handover finished");
    done();
  };
  if (server_) {
    server_->handOver(std::chrono::duration_cast<std::chrono::milliseconds>(grace), std::move(finished));
  } else {
    finished();
  }
}

void Proxy::startMetrics(HandoverState* handed) {
  metrics_server_ = std::make_unique<MetricsServer>(
      loop_, [this] { return metrics_->exposition(metricsSnapshot()); },
      [this] { return metrics_->statusJson(metricsSnapshot()); });
  std::optional<HandedSocket> socket = handed ? handed->takeSocket("metrics", config_.metrics_listen) : std::nullopt;
  int status = socket ? metrics_server_->adopt(socket->fd, socket->endpoint)
                      : metrics_server_->listen(endpointFor(config_.metrics_listen));
  if (status != 0) {
    logError("cannot listen for metrics on " + config_.metrics_listen.toString() + ": " + uvErrorText(status) +
             " (running without /metrics)");
    metrics_server_.reset();
    return;
  }
  logInfo("metrics on http://" + metrics_server_->boundEndpoint().toString() + "/metrics");
}

void Proxy::trimHeapAfterBursts() {
  if (replay_budget_.held() > 0 || *trimming_) return;  // a burst under way: its peak waits for the next look
  if (replay_budget_.takePeak() < kTrimAfter) return;
  // Off the loop: giving back 150 MiB of scattered chunks takes glibc 150-200 ms of madvise here.
  *trimming_ = true;
  runInBackground(
      loop_, [] { ::malloc_trim(0); }, [trimming = trimming_] { *trimming = false; });
}

ProxySnapshot Proxy::metricsSnapshot() const {
  ProxySnapshot snapshot;
  const SessionTable& table = routing_state_.sessions();
  std::map<std::string, size_t> active = table.activeSessionsPerWorker();
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
  snapshot.tracked_sessions = table.size();
  snapshot.moved_sessions = table.movedCount();
  snapshot.max_sessions = table.maxEntries();
  snapshot.session_evictions = table.evictions();
  snapshot.client_table_entries = client_limiter_.size();
  snapshot.client_table_evictions = client_limiter_.evictions();
  snapshot.client_table_untracked = client_limiter_.untracked();
  snapshot.retry_buffer_bytes = replay_budget_.held();
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
  startup_timer_.stop();
  startListening(true);
}

int Proxy::bindListeners(HandoverState* handed) {
  server_ = std::make_unique<HttpServer>(loop_, serverOptions(),
                                         [this](const ServerExchangePtr& exchange) { handleRequest(exchange); });
  // A predecessor's socket where it serves the configured address: no connection is refused.
  auto bindOrAdopt = [&](const char* role, const Address& address, bool tls) {
    std::optional<HandedSocket> socket = handed ? handed->takeSocket(role, address) : std::nullopt;
    if (!socket) return server_->bind(endpointFor(address), 0, tls);
    logInfo("took over the socket of " + socket->endpoint.toString() + " from pid " + std::to_string(handed->pid));
    return server_->adopt(socket->fd, socket->endpoint, tls);
  };
  int status = bindOrAdopt("listen", config_.listen, false);
  if (status != 0) {
    logError("cannot listen on " + config_.listen.toString() + ": " + uvErrorText(status));
    return status;
  }
  if (tls_) {
    server_->setTlsContext(tls_->context());
    status = bindOrAdopt("tls", config_.tls.listen, true);
    if (status != 0) logError("cannot listen for TLS on " + config_.tls.listen.toString() + ": " + uvErrorText(status));
  }
  return status;
}

void Proxy::startListening(bool every_worker_ready) {
  listening_ = true;
  if (accept_gate_ && !accept_gate_()) {
    if (on_listening_) on_listening_(UV_ECANCELED);
    return;
  }
  int status = server_->startAccepting();
  if (status == 0 && every_worker_ready) {
    logInfo("listening on " + server_->boundEndpoint().toString() + " with " + std::to_string(workers_.size()) +
            " workers ready");
  }
  if (on_listening_) on_listening_(status);
}

void Proxy::handleRequest(const ServerExchangePtr& exchange) {
  ClientAddress client = clientAddressOf(config_.trusted_proxies, exchange->peer(), exchange->request().headers);
  if (overRateLimit(exchange, client.text, client.key)) return;
  if (redirectToHttps(exchange)) return;
  // From the thread's recycled blocks: a steady stream of requests allocates none.
  auto request = std::allocate_shared<ProxyRequest>(RecyclingAllocator<ProxyRequest>(), *this, exchange,
                                                    std::move(client.text));
  exchange->setHandler(request);
  request->start();
}

std::shared_ptr<Worker> Proxy::sharedWorker(const std::string& name) {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second;
}

const WorkerProcess* Proxy::process(const std::string& name) const {
  return supervisor_ ? std::as_const(*supervisor_).find(name) : nullptr;
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
  health_.spawned(name);
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
  if (!operations_.restartingInPlace(worker.name())) worker.admission().abandonQueue();
  if (was_down) return;
  // Its sessions move on their next request, each announced there: a session that makes none
  // before the worker is back stays where its files are.
  logError("worker " + worker.name() + " is down (" + reason + "); its " +
           std::to_string(routing_state_.sessions().activeSessionsOf(worker.name())) +
           " active sessions move to other workers on their next request");
}

void Proxy::markReady(Worker& worker) {
  bool drain = operations_.comesUpDraining(worker.name());
  worker.setState(drain ? WorkerState::kDraining : WorkerState::kReady);
  logInfo("worker " + worker.name() + " is ready" + (worker.pid() != 0 ? " (pid " + std::to_string(worker.pid()) + ")" : "") +
          (drain ? "; draining, as the admin asked" : ""));
  maybeStartListening();
}

void Proxy::noteConnectFailure(Worker& worker, const std::string& reason) {
  worker.counters().connect_failures++;
  metrics_->upstreamConnectError(worker.name());
  // A probe decides: the failure may be this connection's alone (a full backlog, a reset).
  if (health_.probeSoon(worker)) logInfo("worker " + worker.name() + ": " + reason + "; probing it now");
}

size_t Proxy::moveSessionsOf(const std::string& name) {
  size_t moved = router_->repinSessionsOf(name, std::chrono::system_clock::now());
  if (moved > 0) sessionsChanged();
  metrics_->sessionsRepinned("evict", moved);
  return moved;
}

void Proxy::shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logInfo("shutting down: finishing requests in flight");
  health_.stop();
  startup_timer_.stop();
  trim_timer_.stop();
  routing_state_.stop();
  if (metrics_server_) metrics_server_->shutdown(std::chrono::seconds(1), [] {});
  operations_.stop();
  auto stop_workers = [this, done = std::move(done)]() mutable {
    routing_state_.flush([this, done = std::move(done)]() mutable {
      auto stopped = [this, done = std::move(done)] {
        for (auto& [name, worker] : workers_) worker->pool().closeIdle();
        logInfo("stopped");
        done();
      };
      // A start that failed (secrets, certificates, a bind) never made the supervisor.
      if (supervisor_) {
        supervisor_->stopAll(std::move(stopped));
      } else {
        stopped();
      }
    });
  };
  if (server_) {
    server_->shutdown(config_.supervisor.stop_grace, std::move(stop_workers));
  } else {
    stop_workers();
  }
}

bool Proxy::overRateLimit(const ServerExchangePtr& exchange, const std::string& client_text, const ClientKey& client) {
  std::optional<uint32_t> wait = client_limiter_.takeRequest(client, std::chrono::steady_clock::now());
  if (!wait) return false;
  metrics_->clientLimited("rate");
  metrics_->requestRefused(429);
  HeaderList headers;
  headers.add("Retry-After", std::to_string(*wait));
  exchange->respond(429, "text/plain; charset=utf-8", "429 Too Many Requests: retry in " + std::to_string(*wait) + " s\n",
                    std::move(headers));
  AccessRecord record;
  record.time = std::chrono::system_clock::now();
  record.client = client_text;
  record.method = exchange->request().method;
  record.path = exchange->request().path();
  record.status = 429;
  record.bytes_sent = exchange->bodyBytesSent();
  record.note = "over per_client_rate, retry after " + std::to_string(*wait) + " s";
  access_log_->write(record);
  return true;
}

void Proxy::noteConnectionCut(const Endpoint& peer, std::string_view reason) {
  metrics_->connectionCut(reason);
  if (reason != "over_limit") return;  // send_idle: the request's access line has the reason
  // A client far over its connection limit may open thousands a second: one line per interval.
  constexpr auto kLogInterval = std::chrono::seconds(10);
  ++cuts_unlogged_;
  auto now = std::chrono::steady_clock::now();
  if (now - cut_logged_at_ < kLogInterval) return;
  logInfo("closed " + std::to_string(cuts_unlogged_) + " connection(s) at accept for being over twice " +
          "per_client_connections (latest from " + peer.host() + ")");
  cuts_unlogged_ = 0;
  cut_logged_at_ = now;
}

bool Proxy::redirectToHttps(const ServerExchangePtr& exchange) {
  if (!config_.tls.enabled || !config_.tls.redirect_http || exchange->secure()) return false;
  const RequestHead& request = exchange->request();
  const std::string* host_field = request.headers.find("Host");
  std::string host = host_field != nullptr ? *host_field : config_.tls.listen.host;
  // Host without its port (a bracketed IPv6 literal keeps its brackets), then the TLS port.
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) host.resize(colon);
  if (config_.tls.listen.port != 443) host += ":" + std::to_string(config_.tls.listen.port);
  HeaderList headers;
  headers.add("Location", "https://" + host + request.target);
  exchange->respond(308, "text/plain; charset=utf-8", "Use https://" + host + request.target + "\n", std::move(headers));
  return true;
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
  warnRestart("proxy.user", next.user != config_.user || next.group != config_.group);
  warnRestart("tls.listen", next.tls.enabled != config_.tls.enabled || !(next.tls.listen == config_.tls.listen));
  next.tls.enabled = config_.tls.enabled;
  next.tls.listen = config_.tls.listen;
  if (tls_) {
    // New certificates (or the same files, re-read) for new connections; open ones keep theirs.
    std::string error;
    if (tls_->load(next.tls, &error)) {
      if (server_) server_->setTlsContext(tls_->context());
    } else {
      logError("reload: tls: " + error + "; keeping the running certificates");
      next.tls = config_.tls;
    }
  }
  next.listen = config_.listen;
  next.metrics_listen = config_.metrics_listen;
  next.admin_socket = config_.admin_socket;
  next.admin_group = config_.admin_group;
  next.state_dir = config_.state_dir;

  bool members_changed = workerNames(next) != workerNames(config_);
  bool vnodes_changed = next.routing.virtual_nodes != config_.routing.virtual_nodes;
  std::vector<std::string> restart = rebuildWorkers(next);
  config_ = std::move(next);
  routing_state_.applyConfig();
  if (members_changed || vnodes_changed) {
    size_t pinned = router_->replaceRing(Ring::build(workerNames(config_), config_.routing.virtual_nodes),
                                         std::chrono::system_clock::now());
    if (pinned > 0) sessionsChanged();
    logInfo("reload: worker set changed; " + std::to_string(pinned) + " live sessions kept on their workers");
  }
  indexWorkers();
  client_limiter_.setLimits(clientLimitsOf(config_));
  replay_budget_.setLimit(config_.limits.retry_buffer_total);
  if (server_) server_->setOptions(serverOptions());
  supervisor_->applyConfig(config_);
  for (const std::string& name : restart) operations_.restartInPlace(name);
  logInfo("configuration reloaded from " + config_.source_path);
  if (on_reloaded_) on_reloaded_(config_);
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
    health_.forget(name);
    operations_.forget(name);
  }
  workers_ = std::move(rebuilt);
  return restart;
}

}  // namespace stickyproxy
