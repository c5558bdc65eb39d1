#include "proxy/core/worker_health.h"

#include <utility>

#include "proxy/core/access_log.h"
#include "proxy/core/health_checker.h"

namespace stickyproxy {

namespace {
// How often starting workers are probed: readiness should be noticed quickly.
constexpr std::chrono::milliseconds kStartingProbeInterval{100};
constexpr std::chrono::milliseconds kHealthTick{50};
}  // namespace

WorkerHealth::WorkerHealth(uv_loop_t* loop, const Config& config, const WorkerMap& workers, Callbacks callbacks)
    : loop_(loop), config_(config), workers_(workers), callbacks_(std::move(callbacks)), timer_(loop) {}

WorkerHealth::~WorkerHealth() { *alive_ = false; }

void WorkerHealth::start() {
  timer_.startRepeating(kHealthTick, [this] { tick(); });
}

void WorkerHealth::stop() {
  stopped_ = true;
  timer_.stop();
}

void WorkerHealth::spawned(const std::string& name) { next_probe_[name] = std::chrono::steady_clock::now(); }

bool WorkerHealth::probeSoon(const Worker& worker) {
  if (!worker.up() || probing_[worker.name()]) return false;
  next_probe_[worker.name()] = std::chrono::steady_clock::now();
  return true;
}

void WorkerHealth::forget(const std::string& name) {
  next_probe_.erase(name);
  probing_pending_.erase(name);
}

Worker* WorkerHealth::find(const std::string& name) const {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second.get();
}

void WorkerHealth::tick() {
  auto now = std::chrono::steady_clock::now();
  for (const auto& [name, worker_ptr] : workers_) {
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
    probe(worker);
  }
}

void WorkerHealth::probe(Worker& worker) {
  std::string name = worker.name();
  probing_[name] = true;
  probeOnce(loop_, worker.endpoint(), config_.health_check.path, config_.health_check.timeout,
            [this, name, alive = alive_](bool healthy, const std::string& reason) {
              if (!*alive) return;
              probing_[name] = false;
              Worker* probed = find(name);
              if (probed == nullptr || stopped_) return;
              if (healthy) {
                if (probed->observeSuccess(config_.health_check.rise)) callbacks_.on_ready(*probed);
              } else if (probed->observeFailure(config_.health_check.fall)) {
                callbacks_.on_down(*probed, "health check failed: " + reason, "unhealthy");
              }
            });
}

void WorkerHealth::probePendingAddress(Worker& worker) {
  std::optional<Endpoint> pending = worker.pendingEndpoint();
  if (!pending || worker.supervised() || !probing_pending_.insert(worker.name()).second) return;
  std::string name = worker.name();
  std::weak_ptr<Worker> weak = workers_.at(name);
  probeOnce(loop_, *pending, config_.health_check.path, config_.health_check.timeout,
            [this, weak, name, alive = alive_](bool healthy, const std::string&) {
              if (!*alive) return;
              probing_pending_.erase(name);
              std::shared_ptr<Worker> probed = weak.lock();
              if (!probed || !healthy || stopped_ || !probed->pendingEndpoint()) return;
              probed->commitPending();
              logInfo("worker " + name + " now at " + probed->config().address.toString() +
                      " (it answered its health check there)");
            });
}

}  // namespace stickyproxy
