// The workers' health policy: when each worker is probed, and what `rise` successes or `fall`
// failures in a row mean. Also probes an external worker's reloaded address before using it.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "proxy/config/config.h"
#include "proxy/core/worker.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

// Probes every worker that has something to probe (a supervised worker needs a process): every
// 100 ms while it is starting, every health_check.interval after, one probe at a time per
// worker. `rise` successes in a row call `on_ready`, `fall` failures in a row `on_down`.
// `loop`, `config` and `workers` must outlive the object; both are read again after a reload.
// Loop thread only.
class WorkerHealth {
 public:
  struct Callbacks {
    std::function<void(Worker& worker)> on_ready;
    // `reason` for the log; `cause` is "unhealthy".
    std::function<void(Worker& worker, const std::string& reason, const char* cause)> on_down;
  };

  WorkerHealth(uv_loop_t* loop, const Config& config, const WorkerMap& workers, Callbacks callbacks);
  ~WorkerHealth();
  WorkerHealth(const WorkerHealth&) = delete;
  WorkerHealth& operator=(const WorkerHealth&) = delete;

  void start();
  // No probe starts after this, and the answers of those running are ignored.
  void stop();

  // `name` has a new process: probe it now.
  void spawned(const std::string& name);
  // A connection to `worker` failed: probe it now (unless a probe is running), since the
  // failure may be that connection's alone. Returns whether a probe was scheduled.
  bool probeSoon(const Worker& worker);
  // `name` left the config.
  void forget(const std::string& name);

 private:
  void tick();
  void probe(Worker& worker);
  // Probes an external worker's new address; it takes effect once that answers.
  void probePendingAddress(Worker& worker);
  Worker* find(const std::string& name) const;

  uv_loop_t* loop_;
  const Config& config_;
  const WorkerMap& workers_;
  Callbacks callbacks_;
  Timer timer_;
  bool stopped_ = false;
  std::map<std::string, std::chrono::steady_clock::time_point> next_probe_;
  std::map<std::string, bool> probing_;
  std::set<std::string> probing_pending_;  // an external worker's new address is being probed
  std::map<std::string, std::chrono::steady_clock::time_point> next_pending_probe_;
  // False once the object is gone: probes may answer after that.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy
