// The proxy's view of one worker: where it is, whether it may take requests, its keep-alive
// pool and its admission queue.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "proxy/config/config.h"
#include "proxy/net/endpoint.h"
#include "proxy/upstream/admission.h"
#include "proxy/upstream/upstream_pool.h"

namespace stickyproxy {

enum class WorkerState {
  kStarting,  // spawned (or configured), not yet answering health checks
  kReady,     // takes requests
  kDraining,  // set by the admin: serves its active sessions, gets no new ones
  kDrained,   // draining, and nothing in flight nor any session active within routing.drain_idle
  kDown,      // dead, unreachable or failing health checks: its sessions move
};
const char* workerStateName(WorkerState state);

struct WorkerCounters {
  uint64_t requests = 0;
  uint64_t errors = 0;       // 5xx sent on its behalf or upstream failures
  uint64_t restarts = 0;
  uint64_t connect_failures = 0;
};

class Worker {
 public:
  // `loop` must outlive the worker.
  Worker(uv_loop_t* loop, const WorkerConfig& config, const Config& proxy_config);

  const std::string& name() const { return config_.name; }
  const WorkerConfig& config() const { return config_; }
  const Endpoint& endpoint() const { return endpoint_; }
  bool supervised() const { return config_.supervised(); }

  WorkerState state() const { return state_; }
  // Takes new sessions.
  bool ready() const { return state_ == WorkerState::kReady; }
  // Answers requests: ready, draining or drained (a draining worker still serves its sessions).
  bool up() const {
    return state_ == WorkerState::kReady || state_ == WorkerState::kDraining || state_ == WorkerState::kDrained;
  }
  std::chrono::steady_clock::time_point stateSince() const { return state_since_; }
  void setState(WorkerState state);
  // Why it was last marked down: "death" or "unhealthy" (for stickyproxy_repins_total).
  const char* downCause() const { return down_cause_; }
  void setDownCause(const char* cause) { down_cause_ = cause; }

  // Active health-check results. Returns true when the observation reached its threshold
  // (`rise` successes in a row to come up, `fall` failures in a row to go down).
  bool observeSuccess(uint32_t rise);
  bool observeFailure(uint32_t fall);

  UpstreamPool& pool() { return pool_; }
  Admission& admission() { return admission_; }
  WorkerCounters& counters() { return counters_; }
  int pid() const { return pid_; }
  void setPid(int pid) { pid_ = pid; }

  // Applies a reloaded config's limits and timeouts. A changed address is not applied here: it
  // becomes the pending endpoint (see below), as does the rest of `config`.
  void applyConfig(const WorkerConfig& config, const Config& proxy_config);
  // A reloaded config whose address (or, supervised, command, args or env) differs from the
  // running one: set by applyConfig(), applied by commitPending() once the worker behind it
  // answers (external) or its process is restarted with it (supervised).
  const std::optional<WorkerConfig>& pendingConfig() const { return pending_; }
  std::optional<Endpoint> pendingEndpoint() const;
  void commitPending();

  static PoolOptions poolOptionsFor(const Config& config);

 private:
  WorkerConfig config_;
  Endpoint endpoint_;
  WorkerState state_ = WorkerState::kStarting;
  std::chrono::steady_clock::time_point state_since_;
  uint32_t consecutive_successes_ = 0;
  uint32_t consecutive_failures_ = 0;
  UpstreamPool pool_;
  Admission admission_;
  WorkerCounters counters_;
  int pid_ = 0;
  std::optional<WorkerConfig> pending_;
  const char* down_cause_ = "unavailable";
};

// The proxy's workers by name. Shared: a request keeps its worker alive after a reload removed it.
using WorkerMap = std::map<std::string, std::shared_ptr<Worker>>;

// Converts a config address to the net layer's endpoint.
Endpoint endpointFor(const Address& address);

}  // namespace stickyproxy
