// What the admin (and a reload) does to one worker, each a state machine advanced every 100 ms:
// drain, ready, evict, restart, restart in place, and the waits for their outcomes.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <list>
#include <set>
#include <string>

#include "proxy/config/config.h"
#include "proxy/core/routing_state.h"
#include "proxy/core/worker.h"
#include "proxy/net/timer.h"
#include "proxy/routing/router.h"
#include "proxy/supervisor/supervisor.h"

namespace stickyproxy {

// `loop`, `config`, `workers` and `state` must outlive the object; `config` and `workers` are
// read again after a reload. Loop thread only.
class WorkerOperations {
 public:
  // Moves every session pinned to `name` now, announced; returns how many the table knew of.
  using MoveSessions = std::function<size_t(const std::string& name)>;
  using WaitDone = std::function<void(const std::string& outcome)>;
  using RestartDone = std::function<void(bool ok, const std::string& message)>;

  WorkerOperations(uv_loop_t* loop, const Config& config, const WorkerMap& workers, RoutingState& state,
                   MoveSessions move_sessions);
  WorkerOperations(const WorkerOperations&) = delete;
  WorkerOperations& operator=(const WorkerOperations&) = delete;

  // Loads the workers the admin left drained, and starts the 100 ms tick. `supervisor` (null
  // when there is none) must outlive the object.
  void start(Supervisor* supervisor);
  // Every wait and restart ends now with "shutting down"; none starts after this.
  void stop();

  // --- what the rest of the proxy asks ---
  // True when the admin has taken `name` out of rotation (drain or evict) and not put it back.
  bool adminDraining(const std::string& name) const { return admin_draining_.count(name) > 0; }
  // True while `name` restarts in place: its queued requests wait for it.
  bool restartingInPlace(const std::string& name) const { return restarting_in_place_.count(name) > 0; }
  // What `name` may take now, for the router.
  Availability availability(const std::string& name) const;
  // The same for a worker at hand: no lookup by name while no admin operation is under way.
  Availability availability(const Worker& worker) const;
  // Why sessions leave `name` now, for stickyproxy_repins_total: "death", "unhealthy",
  // "removed", "evict", "drain" or "unavailable".
  const char* moveReason(const std::string& name) const;
  // `name` passed its health checks: an admin restart's eviction ends. Returns whether it comes
  // up draining (the admin keeps it out of rotation).
  bool comesUpDraining(const std::string& name);
  // `name` left the config: it is no longer evicted, restarting or paused.
  void forget(const std::string& name);

  // --- the operations ---
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
  void waitDrained(const std::string& name, Duration timeout, WaitDone done);
  // Graceful recycle of a supervised worker: drain (waiting up to `drain_timeout`), move its
  // remaining sessions, wait for its requests in flight, SIGTERM (SIGKILL after stop_grace),
  // respawn, and back in rotation once healthy. `done` gets whether it is ready again with a new
  // process, and a one-line account.
  void restartWorker(const std::string& name, Duration drain_timeout, RestartDone done);
  // A reload changed how supervised `name` runs: its requests wait (held in its queue) while
  // the requests in flight finish, its process is restarted with the new config, and they go
  // on once it answers. Nobody moves unless it fails to come back.
  void restartInPlace(const std::string& name);

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  struct DrainWait {
    std::string name;
    SteadyTime deadline;
    WaitDone done;
  };

  // One restart: each phase waits for an outcome (or its deadline, "timeout"), then the next
  // phase begins. An admin restart goes kDraining -> kEmptying -> kRespawning; a restart in
  // place kIdling -> kRespawning.
  struct Restart {
    enum class Kind { kAdmin, kInPlace };
    enum class Phase {
      kDraining,    // no new sessions; until drained
      kEmptying,    // its sessions moved; until nothing is in flight or queued
      kIdling,      // its requests held; until nothing is in flight
      kRespawning,  // old process stopped; until a new one answers
      kFinished,
    };
    Kind kind = Kind::kAdmin;
    Phase phase = Phase::kFinished;
    std::string name;
    SteadyTime deadline;
    std::string drain_outcome;  // admin: how kDraining ended
    size_t moved = 0;           // admin: sessions moved by the eviction
    int old_pid = 0;
    RestartDone done;  // admin only
  };

  Worker* find(const std::string& name) const;
  // Every 100 ms: draining <-> drained, then the waits and the restarts.
  void tick();
  void updateDrainStates();
  // "drained", "not draining", or "" while `name` drains.
  std::string drainOutcome(const std::string& name) const;
  // Ends phases while their outcome is known; `expire` also ends a phase past its deadline.
  // A phase that begins here is checked at once and expires from the next tick on.
  void advance(Restart& restart, bool expire);
  // The outcome the current phase waits for, or "" while it waits.
  std::string check(const Restart& restart) const;
  // Acts on the current phase's `outcome` and begins the next phase.
  void conclude(Restart& restart, const std::string& outcome);
  void concludeInPlace(Restart& restart, bool ok, const std::string& account);
  void respawn(Restart& restart, WorkerProcess& process);

  const Config& config_;
  const WorkerMap& workers_;
  RoutingState& state_;
  MoveSessions move_sessions_;
  Supervisor* supervisor_ = nullptr;
  Timer timer_;
  bool stopping_ = false;
  std::set<std::string> admin_draining_;       // persisted by state_
  std::set<std::string> admin_evicted_;        // evicted or restarting: sessions leave until ready
  std::set<std::string> restart_pending_;      // restarted by the admin: evicted until the new process is ready
  std::set<std::string> restarting_in_place_;  // see restartInPlace()
  std::list<DrainWait> drain_waits_;
  std::list<Restart> restarts_;  // a list: concluding one may begin another
};

}  // namespace stickyproxy
