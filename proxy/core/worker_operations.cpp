#include "proxy/core/worker_operations.h"

#include <iterator>
#include <utility>

#include "proxy/core/access_log.h"

namespace stickyproxy {

namespace {
constexpr std::chrono::milliseconds kTick{100};
}  // namespace

WorkerOperations::WorkerOperations(uv_loop_t* loop, const Config& config, const WorkerMap& workers,
                                   RoutingState& state, MoveSessions move_sessions)
    : config_(config),
      workers_(workers),
      state_(state),
      move_sessions_(std::move(move_sessions)),
      timer_(loop) {}

void WorkerOperations::start(Supervisor* supervisor) {
  supervisor_ = supervisor;
  admin_draining_ = state_.loadDrainedWorkers();
  timer_.startRepeating(kTick, [this] { tick(); });
}

void WorkerOperations::stop() {
  stopping_ = true;
  timer_.stop();
  std::list<DrainWait> waits = std::move(drain_waits_);
  drain_waits_.clear();
  for (DrainWait& wait : waits) wait.done("shutting down");
  for (Restart& restart : restarts_) advance(restart, false);
  restarts_.clear();
}

Worker* WorkerOperations::find(const std::string& name) const {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : it->second.get();
}

Availability WorkerOperations::availability(const std::string& name) const {
  Worker* worker = find(name);
  if (worker == nullptr) return Availability::kDown;
  return availability(*worker);
}

Availability WorkerOperations::availability(const Worker& worker) const {
  if (!restarting_in_place_.empty() && restartingInPlace(worker.name())) return Availability::kPaused;
  if (!worker.up()) return Availability::kDown;
  if (!admin_evicted_.empty() && admin_evicted_.count(worker.name()) > 0) return Availability::kEvicted;
  return worker.ready() ? Availability::kReady : Availability::kDraining;
}

const char* WorkerOperations::moveReason(const std::string& name) const {
  Worker* worker = find(name);
  if (worker == nullptr) return "removed";
  if (!worker->up()) return worker->downCause();
  if (admin_evicted_.count(name) > 0) return "evict";
  return worker->ready() ? "unavailable" : "drain";
}

bool WorkerOperations::comesUpDraining(const std::string& name) {
  if (restart_pending_.erase(name) > 0) admin_evicted_.erase(name);
  return adminDraining(name);
}

void WorkerOperations::forget(const std::string& name) {
  admin_evicted_.erase(name);
  restart_pending_.erase(name);
  restarting_in_place_.erase(name);
}

void WorkerOperations::drainWorker(Worker& worker) {
  if (admin_draining_.insert(worker.name()).second) state_.saveDrainedWorkers(admin_draining_);
  if (worker.ready()) {
    worker.setState(WorkerState::kDraining);
    logInfo("worker " + worker.name() + " is draining (admin): no new sessions");
  }
}

void WorkerOperations::readyWorker(Worker& worker) {
  if (admin_draining_.erase(worker.name()) > 0) state_.saveDrainedWorkers(admin_draining_);
  admin_evicted_.erase(worker.name());
  if (worker.state() == WorkerState::kDraining || worker.state() == WorkerState::kDrained) {
    worker.setState(WorkerState::kReady);
    logInfo("worker " + worker.name() + " is back in rotation (admin)");
  }
}

size_t WorkerOperations::evictWorker(Worker& worker) {
  drainWorker(worker);
  admin_evicted_.insert(worker.name());
  size_t moved = move_sessions_(worker.name());
  logInfo("worker " + worker.name() + " evicted (admin): " + std::to_string(moved) + " sessions re-pinned");
  return moved;
}

std::string WorkerOperations::drainOutcome(const std::string& name) const {
  Worker* worker = find(name);
  if (worker == nullptr || !adminDraining(name)) return "not draining";
  return worker->state() == WorkerState::kDrained ? "drained" : "";
}

void WorkerOperations::waitDrained(const std::string& name, Duration timeout, WaitDone done) {
  // The states are otherwise brought up to date by the tick: a session active again since the
  // last one must not be answered "drained".
  updateDrainStates();
  std::string outcome = stopping_ ? "shutting down" : drainOutcome(name);
  if (!outcome.empty()) {
    done(outcome);
    return;
  }
  drain_waits_.push_back(DrainWait{name, std::chrono::steady_clock::now() + timeout, std::move(done)});
}

void WorkerOperations::restartWorker(const std::string& name, Duration drain_timeout, RestartDone done) {
  Worker* worker = find(name);
  if (worker == nullptr || supervisor_ == nullptr || supervisor_->find(name) == nullptr) {
    done(false, "worker " + name + " is not supervised by this proxy");
    return;
  }
  drainWorker(*worker);
  logInfo("restarting worker " + name + " (admin): draining first");
  Restart restart;
  restart.kind = Restart::Kind::kAdmin;
  restart.phase = Restart::Phase::kDraining;
  restart.name = name;
  restart.deadline = std::chrono::steady_clock::now() + drain_timeout;
  restart.done = std::move(done);
  advance(restarts_.emplace_back(std::move(restart)), false);
}

void WorkerOperations::restartInPlace(const std::string& name) {
  Worker* worker = find(name);
  if (worker == nullptr || supervisor_ == nullptr || !restarting_in_place_.insert(name).second) return;
  logInfo("reload: worker " + name + " restarts with its new command, arguments, environment or address; its " +
          "requests wait for it");
  worker->admission().setHeld(true);
  Restart restart;
  restart.kind = Restart::Kind::kInPlace;
  restart.phase = Restart::Phase::kIdling;
  restart.name = name;
  restart.deadline = std::chrono::steady_clock::now() + config_.supervisor.stop_grace;
  restart.old_pid = worker->pid();
  advance(restarts_.emplace_back(std::move(restart)), false);
}

void WorkerOperations::advance(Restart& restart, bool expire) {
  while (restart.phase != Restart::Phase::kFinished) {
    std::string outcome = stopping_ ? "shutting down" : check(restart);
    if (outcome.empty() && expire && std::chrono::steady_clock::now() >= restart.deadline) outcome = "timeout";
    if (outcome.empty()) return;
    conclude(restart, outcome);
    expire = false;
  }
}

std::string WorkerOperations::check(const Restart& restart) const {
  if (restart.phase == Restart::Phase::kDraining) return drainOutcome(restart.name);
  Worker* worker = find(restart.name);
  if (worker == nullptr) return "gone";
  switch (restart.phase) {
    case Restart::Phase::kEmptying:
      return worker->admission().inFlight() == 0 && worker->admission().queued() == 0 ? "idle" : "";
    case Restart::Phase::kIdling:
      return worker->admission().inFlight() == 0 ? "idle" : "";
    case Restart::Phase::kRespawning: {
      // The admin's restart waits until the worker is back in rotation; one in place until it
      // answers (a worker the admin drained stays drained).
      bool answers = restart.kind == Restart::Kind::kAdmin ? worker->ready() : worker->up();
      return answers && worker->pid() != 0 && worker->pid() != restart.old_pid ? "ready" : "";
    }
    default:
      return "";
  }
}

void WorkerOperations::conclude(Restart& restart, const std::string& outcome) {
  const std::string& name = restart.name;
  WorkerProcess* process = supervisor_ != nullptr ? supervisor_->find(name) : nullptr;
  switch (restart.phase) {
    case Restart::Phase::kDraining: {
      Worker* current = find(name);
      restart.phase = Restart::Phase::kFinished;
      if (outcome == "shutting down" || current == nullptr || process == nullptr) {
        restart.done(false,
                     "restart of " + name + " abandoned: " + (current == nullptr ? "worker removed" : outcome));
        return;
      }
      if (outcome == "not draining") {
        restart.done(false, "restart of " + name + " abandoned: it was put back in rotation meanwhile");
        return;
      }
      // Whatever still uses it moves now, announced, so nothing is sent to a process about to stop.
      restart.drain_outcome = outcome;
      restart.moved = evictWorker(*current);
      restart.phase = Restart::Phase::kEmptying;
      restart.deadline = std::chrono::steady_clock::now() + config_.supervisor.stop_grace;
      return;
    }
    case Restart::Phase::kEmptying: {
      Worker* worker = find(name);
      if (worker == nullptr || process == nullptr || stopping_) {
        restart.phase = Restart::Phase::kFinished;
        restart.done(false, "restart of " + name + " abandoned: worker removed or proxy stopping");
        return;
      }
      // Back in rotation once the new process answers its health check (comesUpDraining); until
      // then the old one gets nothing.
      if (admin_draining_.erase(name) > 0) state_.saveDrainedWorkers(admin_draining_);
      restart_pending_.insert(name);
      restart.old_pid = worker->pid();
      respawn(restart, *process);
      return;
    }
    case Restart::Phase::kIdling:
      if (outcome == "gone" || outcome == "shutting down" || process == nullptr) {
        return concludeInPlace(restart, false, outcome);
      }
      respawn(restart, *process);
      return;
    case Restart::Phase::kRespawning: {
      std::string pid_account = "pid " + std::to_string(restart.old_pid);
      if (restart.kind == Restart::Kind::kInPlace) {
        return concludeInPlace(restart, outcome == "ready", pid_account + ": " + outcome);
      }
      restart.phase = Restart::Phase::kFinished;
      std::string account = std::string(restart.drain_outcome == "drained" ? "drained" : "drain timed out") +
                            ", " + std::to_string(restart.moved) + " sessions moved, " + pid_account;
      Worker* again = find(name);
      if (outcome == "ready" && again != nullptr) {
        restart.done(true, "restarted " + name + " (" + account + " -> " + std::to_string(again->pid()) + "): ready");
      } else {
        restart.done(false, "restart of " + name + " did not finish (" + account + "): " + outcome);
      }
      return;
    }
    case Restart::Phase::kFinished:
      return;
  }
}

void WorkerOperations::respawn(Restart& restart, WorkerProcess& process) {
  process.restart();
  restart.phase = Restart::Phase::kRespawning;
  restart.deadline =
      std::chrono::steady_clock::now() + config_.supervisor.stop_grace + config_.supervisor.startup_timeout;
}

void WorkerOperations::concludeInPlace(Restart& restart, bool ok, const std::string& account) {
  restart.phase = Restart::Phase::kFinished;
  const std::string& name = restart.name;
  restarting_in_place_.erase(name);
  Worker* worker = find(name);
  if (worker == nullptr) return;
  worker->admission().setHeld(false);
  if (ok) {
    logInfo("reload: worker " + name + " restarted in place (" + account + ")");
  } else {
    logError("reload: worker " + name + " did not restart in place (" + account + ")");
    if (!worker->up()) worker->admission().abandonQueue();  // its sessions move, announced
  }
}

void WorkerOperations::tick() {
  updateDrainStates();
  auto now = std::chrono::steady_clock::now();
  for (auto it = drain_waits_.begin(); it != drain_waits_.end();) {
    std::string outcome = drainOutcome(it->name);
    if (outcome.empty() && now >= it->deadline) outcome = "timeout";
    if (outcome.empty()) {
      ++it;
      continue;
    }
    WaitDone done = std::move(it->done);
    it = drain_waits_.erase(it);
    done(outcome);
  }
  for (auto it = restarts_.begin(); it != restarts_.end();) {
    advance(*it, true);
    it = it->phase == Restart::Phase::kFinished ? restarts_.erase(it) : std::next(it);
  }
}

void WorkerOperations::updateDrainStates() {
  auto now = std::chrono::system_clock::now();
  for (const auto& [name, worker] : workers_) {
    if (worker->state() != WorkerState::kDraining && worker->state() != WorkerState::kDrained) continue;
    std::optional<WallTime> last_activity = state_.sessions().lastActivityOf(name);
    bool idle = worker->admission().inFlight() == 0 && worker->admission().queued() == 0 &&
                (!last_activity || now - *last_activity > config_.routing.drain_idle);
    WorkerState next = idle ? WorkerState::kDrained : WorkerState::kDraining;
    if (next == worker->state()) continue;
    worker->setState(next);
    logInfo("worker " + name + " is " + workerStateName(next) +
            (idle ? " (nothing in flight, no session active within routing.drain_idle)" : " (a session is active again)"));
  }
}

}  // namespace stickyproxy
