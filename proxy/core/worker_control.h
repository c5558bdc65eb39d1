// What the admin socket may ask of the running proxy: its workers, their sessions, and the
// operations on them. Declared in core and implemented by Proxy, so that proxy/admin drives the
// core and the core never includes proxy/admin.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "proxy/config/config.h"
#include "proxy/core/worker.h"
#include "proxy/routing/session_table.h"
#include "proxy/supervisor/worker_process.h"

namespace stickyproxy {

// Loop thread only. Every reference handed out is valid until the next call that may change the
// worker set (reload()).
class WorkerControl {
 public:
  using WaitDone = std::function<void(const std::string& outcome)>;
  using RestartDone = std::function<void(bool ok, const std::string& message)>;

  virtual ~WorkerControl() = default;

  virtual const WorkerMap& workers() const = 0;
  // Null when no worker is called `name`.
  virtual Worker* findWorker(const std::string& name) = 0;
  virtual const SessionTable& sessions() const = 0;
  // The process of supervised worker `name`; null for an external worker or before start.
  virtual const WorkerProcess* process(const std::string& name) const = 0;

  // True when the admin has taken `name` out of rotation (drain or evict) and not put it back.
  virtual bool adminDraining(const std::string& name) const = 0;
  // Takes `worker` out of rotation for new sessions; its active sessions keep reaching it.
  // Persisted until readyWorker().
  virtual void drainWorker(Worker& worker) = 0;
  // Puts `worker` back in rotation (ready now if it is up).
  virtual void readyWorker(Worker& worker) = 0;
  // drainWorker(), and every session of `worker` leaves it from now on, announced. Returns how
  // many the table knew of (moved now).
  virtual size_t evictWorker(Worker& worker) = 0;
  // Calls `done` once: "drained", "not draining" (put back in rotation, or gone), "timeout"
  // after `timeout`, or "shutting down".
  virtual void waitDrained(const std::string& name, Duration timeout, WaitDone done) = 0;
  // Drains (up to `drain_timeout`), moves the rest, stops and respawns supervised `name`, and
  // calls `done` once it is ready again (ok) or the restart gave up, with a one-line account.
  virtual void restartWorker(const std::string& name, Duration drain_timeout, RestartDone done) = 0;

  // Re-reads the configuration file; false (the problems logged) keeps the running one.
  virtual bool reload() = 0;
  // A binary upgrade (proxy/core/upgrade_coordinator.h): `done` gets the outcome once the new
  // process serves, or why it does not.
  virtual void upgrade(RestartDone done) { done(false, "binary upgrades are not available here"); }
  // The configuration file reload() reads.
  virtual const std::string& configPath() const = 0;
};

}  // namespace stickyproxy
