// One supervised worker: a child process started from a WorkerConfig and kept running.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/net/pid_watch.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

// Starts a worker's command and respawns it after every exit it did not ask for, waiting a
// jittered exponential backoff in between. Stops it with SIGTERM, then SIGKILL after
// `stop_grace`.
//
// Lifetime: the object may be destroyed at any time, also from inside one of its callbacks or
// a stop() `done`. A child still running then gets SIGKILL and is reaped later by the loop.
// The libuv handles are freed by their uv_close callbacks, so run the loop once more after
// destroying before calling uv_loop_close().
class WorkerProcess {
 public:
  struct Callbacks {
    // A process was started and has `pid`.
    std::function<void(int pid)> on_spawned;
    // The process exited (reported at once by libuv's exit callback). `term_signal` is 0
    // unless the process was killed by a signal.
    std::function<void(int64_t exit_status, int term_signal)> on_exited;
    // uv_spawn failed with the libuv error `error` (e.g. UV_ENOENT). Counts like an
    // immediate exit for the backoff, but no on_exited follows since nothing ran.
    std::function<void(int error)> on_spawn_failed;
  };

  // `loop` must outlive this object. Not thread-safe: use from the loop's thread only.
  // Does not spawn until start(). `config` must be a supervised worker (command set).
  WorkerProcess(uv_loop_t* loop, WorkerConfig config, std::string state_dir,
                SupervisorConfig supervisor, Callbacks callbacks);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Spawns now (a failure backs off like an exit); after each exit, respawns after a backoff.
  // No-op when already started or while a stop is in progress.
  void start();

  // Graceful stop: SIGTERM, then SIGKILL if the process still runs after `stop_grace`.
  // Cancels a pending respawn. `done` (may be empty) runs once the process has exited, or at
  // once when it is not running. Never respawns afterwards until start() or restart().
  void stop(std::function<void()> done);

  // Terminates the process like stop() and spawns it again right after it exited, without
  // backoff and without counting it in restarts(). Resets the crash-loop count. Starts a
  // worker that is not running; ignored while a stop() is in progress.
  void restart();

  // Takes `pid`, a worker a predecessor proxy spawned (a binary upgrade), as if this object had
  // spawned it: its exit is noticed at once through a pidfd (with no exit status: it is not
  // our child), it is stopped and restarted as usual. False, with nothing changed, when the
  // process is gone or cannot be watched. Call instead of start().
  bool adopt(int pid);
  // Lets the process go without signalling it (a successor adopted it): no exit is reported
  // and nothing is respawned from here on.
  void release();

  // Takes effect at the next spawn; `config.name` must not change. The new stop_grace
  // applies to the next stop, the new backoff to the next respawn.
  void updateConfig(WorkerConfig config, SupervisorConfig supervisor);

  // From the next spawn on, while this process is root, the worker runs as `uid`/`gid` (with no
  // supplementary groups). Once the process itself has dropped root, workers inherit its ids.
  struct RunAs {
    uid_t uid;
    gid_t gid;
  };
  void setRunAs(std::optional<RunAs> run_as) { run_as_ = run_as; }

  // 0 when not running.
  int pid() const { return pid_; }
  bool running() const { return child_ != nullptr || adopted_.watching(); }
  bool adopted() const { return adopted_.watching(); }
  // Respawns after exits (or spawn failures) that nobody asked for.
  uint32_t restarts() const { return restarts_; }
  // Unexpected exits in a row without the process staying up `stable_after`; the worker is
  // crash-looping when this reaches kCrashLoopExits.
  uint32_t consecutiveFailures() const { return failures_; }
  // When the current (or last) process was spawned; the epoch when never.
  std::chrono::steady_clock::time_point startedAt() const { return started_at_; }
  const std::string& name() const { return config_.name; }

  // Exits in a row after which each further exit logs a crash-loop line.
  static constexpr uint32_t kCrashLoopExits = 3;

  // The argv the worker gets: the command followed by args, with {name}, {address}, {host},
  // {port}, {path} and {state_dir} replaced. For a Unix address {host} and {port} are empty;
  // for a TCP address {path} is empty and {host} is the bare literal ("::1"). Unknown
  // placeholders stay as written. A command without '/' is looked up in the worker's PATH.
  static std::vector<std::string> expandedArgs(const WorkerConfig& config,
                                               const std::string& state_dir);

  // The environment ("KEY=value") the worker gets: this process's environment, overridden by
  // the config's env (values expanded as in expandedArgs), then STICKYPROXY_WORKER_NAME and
  // STICKYPROXY_WORKER_ADDRESS, which always win. Inherited order is kept; new keys follow.
  static std::vector<std::string> expandedEnv(const WorkerConfig& config,
                                              const std::string& state_dir);

  // The file naming the proxy that supervises the workers of `state_dir` (its pid and a
  // newline); workers get its path in STICKYPROXY_SUPERVISOR_PIDFILE. A worker that watches its
  // supervisor (STICKYPROXY_SUPERVISOR_PID) and sees it exit reads it: a live pid there other
  // than the one that exited is a successor that adopted it (a binary upgrade).
  static std::string supervisorPidFile(const std::string& state_dir) { return state_dir + "/supervisor.pid"; }
  // Names `pid` there; false with `*error` on failure.
  static bool claimSupervision(const std::string& state_dir, int pid, std::string* error);

  // stdin /dev/null, stdout and stderr this process's: for uv_spawn of workers and successors.
  static void inheritOutput(uv_stdio_container_t (&stdio)[3]);

  // The wait before the respawn that follows failure number `consecutive_failures` (>= 1):
  // restart_backoff_initial doubled per earlier failure, capped at restart_backoff_max,
  // times `jitter` (which the supervisor draws from [0.5, 1.0]).
  static Duration backoffDelay(const SupervisorConfig& supervisor, uint32_t consecutive_failures,
                               double jitter);

 private:
  struct Child;  // a heap-allocated uv_process_t that may outlive this object until closed

  static void onChildExit(uv_process_t* process, int64_t exit_status, int term_signal);
  static void onChildClosed(uv_handle_t* handle);

  void spawn();
  void handleExit(int64_t exit_status, int term_signal);
  // Respawns at once (restart) or after the backoff, if the worker should be running.
  void scheduleRespawn();
  void terminate();
  void killNow();
  // Sends `signum` to the running process; 0 or a libuv error code.
  int signalProcess(int signum);

  uv_loop_t* loop_;
  WorkerConfig config_;
  std::string state_dir_;
  SupervisorConfig supervisor_;
  Callbacks callbacks_;
  std::optional<RunAs> run_as_;

  Child* child_ = nullptr;  // set while a process we spawned runs
  PidWatch adopted_;  // watching while an adopted process runs
  int pid_ = 0;
  bool want_running_ = false;       // respawn after an exit
  bool restart_requested_ = false;  // the next exit was asked for by restart()
  bool term_sent_ = false;
  uint32_t restarts_ = 0;
  uint32_t failures_ = 0;
  std::string last_exit_;  // "exit status 1", for the crash-loop line
  std::chrono::steady_clock::time_point started_at_{};
  std::vector<std::function<void()>> stop_done_;

  Timer respawn_timer_;
  Timer kill_timer_;

  // False once destroyed; checked after every callback, which may destroy this object.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// "exit status 3" or "signal 9 (Killed)", for log lines about a worker's exit; a negative
// `exit_status` is an adopted process's exit, whose status only its parent learns.
std::string describeExit(int64_t exit_status, int term_signal);

}  // namespace stickyproxy
