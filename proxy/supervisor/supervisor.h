// The set of supervised workers of one Config.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/supervisor/worker_process.h"

namespace stickyproxy {

// Owns one WorkerProcess per supervised worker (one with a command) of the current Config;
// external workers are ignored. Reports their events with the worker's name.
//
// May be destroyed at any time, also from inside its callbacks; running workers then get
// SIGKILL (see WorkerProcess). Run the loop once more before uv_loop_close().
class Supervisor {
 public:
  struct Callbacks {
    std::function<void(const std::string& name, int pid)> on_spawned;
    std::function<void(const std::string& name, int64_t exit_status, int term_signal)> on_exited;
    std::function<void(const std::string& name, int error)> on_spawn_failed;  // libuv error
  };

  // Creates the workers of `config` without starting them. When this process is root and
  // `config.user` names another account (see service_account.h), workers are spawned as that
  // account; [proxy] user and group change only on restart, so reloads keep it.
  // `loop` (with a LoopContext) must outlive the Supervisor. Loop thread only.
  Supervisor(uv_loop_t* loop, const Config& config, Callbacks callbacks);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts every worker (see WorkerProcess::start); workers added later start at once.
  void startAll();

  // Before startAll(): takes the running process `pid` as worker `name` (see
  // WorkerProcess::adopt). False when there is no such supervised worker or it cannot be watched.
  bool adopt(const std::string& name, int pid);
  // Lets every worker process go without signalling it (a successor adopted them).
  void releaseAll();

  // Stops every worker in parallel, including ones being removed by applyConfig. `done`
  // (may be empty) runs once all have exited, at once when none runs. Workers added by a
  // later applyConfig are not started until startAll().
  void stopAll(std::function<void()> done);

  // The worker named `name`, or nullptr when no supervised worker has that name.
  // The pointer is valid until applyConfig() removes that worker or the Supervisor goes.
  WorkerProcess* find(const std::string& name);
  const WorkerProcess* find(const std::string& name) const;

  // The configured workers, in config order; valid like find()'s result.
  std::vector<WorkerProcess*> workers() const;

  // Reload: starts new workers (when started), stops and removes workers that are gone or
  // no longer supervised, and updates the rest for their next spawn. A changed state_dir
  // applies to new workers only.
  void applyConfig(const Config& config);

 private:
  std::unique_ptr<WorkerProcess> makeWorker(const WorkerConfig& config);
  // Stops `worker` and frees it once it has exited.
  void retire(std::unique_ptr<WorkerProcess> worker);
  // Frees retired workers that have exited; deferred, so never inside their own callbacks.
  void reapRetired();

  uv_loop_t* loop_;
  std::string state_dir_;
  SupervisorConfig supervisor_;
  Callbacks callbacks_;
  std::optional<WorkerProcess::RunAs> run_as_;
  bool started_ = false;
  std::vector<std::unique_ptr<WorkerProcess>> workers_;   // configured, in config order
  std::vector<std::unique_ptr<WorkerProcess>> retiring_;  // removed, stopping or stopped

  // False once destroyed; checked after calls that may run callbacks.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy
