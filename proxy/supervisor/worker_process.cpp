#include "proxy/supervisor/worker_process.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_map>
#include <utility>

#include "proxy/net/file_util.h"

namespace stickyproxy {

struct WorkerProcess::Child {
  uv_process_t handle{};
  WorkerProcess* owner = nullptr;  // cleared when the owner is destroyed first
};

namespace {

void logLine(const std::string& message) {
  std::fprintf(stderr, "stickyproxy: %s\n", message.c_str());
}

std::string seconds(Duration duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(duration.count()) / 1000.0);
  return text;
}

// Jitter keeps workers that crashed together (a shared dependency went away) from retrying in
// lockstep. One engine per process, seeded once; the mutex only matters if several loops run
// supervisors on different threads.
double drawJitter() {
  static std::mutex mutex;
  static std::mt19937_64 engine{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mutex);
  return std::uniform_real_distribution<double>(0.5, 1.0)(engine);
}

std::string placeholderValue(const std::string& key, const WorkerConfig& config,
                             const std::string& state_dir, bool* known) {
  *known = true;
  const Address& address = config.address;
  const bool tcp = address.kind == Address::Kind::kTcp;
  if (key == "name") return config.name;
  if (key == "address") return address.toString();
  if (key == "host") return tcp ? address.host : std::string();
  if (key == "port") return tcp ? std::to_string(address.port) : std::string();
  if (key == "path") return tcp ? std::string() : address.path;
  if (key == "state_dir") return state_dir;
  *known = false;
  return {};
}

// One left-to-right pass, so text that a value brings in (a state_dir containing "{name}")
// is never expanded again.
std::string expand(const std::string& text, const WorkerConfig& config,
                   const std::string& state_dir) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find('{', pos);
    if (open == std::string::npos) break;
    out.append(text, pos, open - pos);
    const size_t close = text.find('}', open + 1);
    if (close == std::string::npos) {
      pos = open;
      break;
    }
    bool known = false;
    std::string value =
        placeholderValue(text.substr(open + 1, close - open - 1), config, state_dir, &known);
    if (known) {
      out += value;
      pos = close + 1;
    } else {
      out += '{';
      pos = open + 1;
    }
  }
  out.append(text, pos, std::string::npos);
  return out;
}

std::vector<char*> nullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

WorkerProcess::WorkerProcess(uv_loop_t* loop, WorkerConfig config, std::string state_dir,
                             SupervisorConfig supervisor, Callbacks callbacks)
    : loop_(loop),
      config_(std::move(config)),
      state_dir_(std::move(state_dir)),
      supervisor_(supervisor),
      callbacks_(std::move(callbacks)),
      adopted_(loop),
      respawn_timer_(loop),
      kill_timer_(loop) {
  assert(config_.supervised());
}

WorkerProcess::~WorkerProcess() {
  *alive_ = false;
  if (adopted_.watching()) {
    logLine("worker " + config_.name + " (pid " + std::to_string(pid_) + ") killed: its supervisor went away");
    signalProcess(SIGKILL);
    adopted_.close();
  }
  if (child_ != nullptr) {
    // The exit callback still closes the handle, so libuv reaps the child.
    logLine("worker " + config_.name + " (pid " + std::to_string(pid_) +
            ") killed: its supervisor went away");
    child_->owner = nullptr;
    uv_process_kill(&child_->handle, SIGKILL);
    child_ = nullptr;
  }
}

bool WorkerProcess::adopt(int pid) {
  if (running() || pid <= 0) return false;
  int error = adopted_.watch(pid, [this] { handleExit(-1, 0); });
  if (error != 0) {
    logLine("worker " + config_.name + ": cannot watch pid " + std::to_string(pid) + ": " + uv_strerror(error));
    return false;
  }
  pid_ = pid;
  want_running_ = true;
  failures_ = 0;
  term_sent_ = false;
  started_at_ = std::chrono::steady_clock::now();
  logLine("worker " + config_.name + " adopted (pid " + std::to_string(pid_) + ")");
  if (auto on_spawned = callbacks_.on_spawned) on_spawned(pid_);
  return true;
}

void WorkerProcess::release() {
  want_running_ = false;
  restart_requested_ = false;
  respawn_timer_.stop();
  kill_timer_.stop();
  stop_done_.clear();
  if (child_ != nullptr) {
    // Closing a process handle neither signals nor waits for the process.
    child_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&child_->handle), &WorkerProcess::onChildClosed);
    child_ = nullptr;
  }
  adopted_.close();
  pid_ = 0;
}

int WorkerProcess::signalProcess(int signum) {
  if (child_ != nullptr) return uv_process_kill(&child_->handle, signum);
  return adopted_.signal(signum);
}

void WorkerProcess::start() {
  if (want_running_ || running()) return;
  want_running_ = true;
  failures_ = 0;
  spawn();
}

void WorkerProcess::stop(std::function<void()> done) {
  want_running_ = false;
  restart_requested_ = false;
  respawn_timer_.stop();
  if (!running()) {
    if (done) done();
    return;
  }
  if (done) stop_done_.push_back(std::move(done));
  terminate();
}

void WorkerProcess::restart() {
  if (!want_running_ && running()) return;  // a stop is in progress
  want_running_ = true;
  failures_ = 0;
  if (running()) {
    restart_requested_ = true;
    terminate();
    return;
  }
  respawn_timer_.stop();
  spawn();
}

void WorkerProcess::updateConfig(WorkerConfig config, SupervisorConfig supervisor) {
  assert(config.name == config_.name);
  assert(config.supervised());
  config_ = std::move(config);
  supervisor_ = supervisor;
}

std::vector<std::string> WorkerProcess::expandedArgs(const WorkerConfig& config,
                                                     const std::string& state_dir) {
  std::vector<std::string> argv;
  argv.reserve(config.args.size() + 1);
  argv.push_back(expand(config.command, config, state_dir));
  for (const std::string& arg : config.args) argv.push_back(expand(arg, config, state_dir));
  return argv;
}

std::vector<std::string> WorkerProcess::expandedEnv(const WorkerConfig& config,
                                                    const std::string& state_dir) {
  std::vector<std::string> env;
  std::unordered_map<std::string, size_t> index;  // key -> position in env
  auto set = [&](const std::string& key, std::string entry) {
    auto [it, inserted] = index.try_emplace(key, env.size());
    if (inserted) {
      env.push_back(std::move(entry));
    } else {
      env[it->second] = std::move(entry);
    }
  };
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    set(text.substr(0, text.find('=')), text);
  }
  for (const auto& [key, value] : config.env) set(key, key + "=" + expand(value, config, state_dir));
  set("STICKYPROXY_WORKER_NAME", "STICKYPROXY_WORKER_NAME=" + config.name);
  set("STICKYPROXY_WORKER_ADDRESS", "STICKYPROXY_WORKER_ADDRESS=" + config.address.toString());
  // Lets a worker end itself with its supervisor (backend/process/supervisor_watch.h).
  set("STICKYPROXY_SUPERVISOR_PID", "STICKYPROXY_SUPERVISOR_PID=" + std::to_string(::getpid()));
  set("STICKYPROXY_SUPERVISOR_PIDFILE", "STICKYPROXY_SUPERVISOR_PIDFILE=" + supervisorPidFile(state_dir));
  return env;
}

void WorkerProcess::inheritOutput(uv_stdio_container_t (&stdio)[3]) {
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = STDOUT_FILENO;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = STDERR_FILENO;
}

bool WorkerProcess::claimSupervision(const std::string& state_dir, int pid, std::string* error) {
  return writeFileAtomically(supervisorPidFile(state_dir), std::to_string(pid) + "\n", error, 0644);
}

Duration WorkerProcess::backoffDelay(const SupervisorConfig& supervisor,
                                     uint32_t consecutive_failures, double jitter) {
  const auto max = static_cast<double>(supervisor.restart_backoff_max.count());
  // Doubling in floating point and stopping at the cap (or at a zero initial delay) neither
  // overflows nor loops long, however long the crash loop has gone on.
  double delay = static_cast<double>(supervisor.restart_backoff_initial.count());
  for (uint32_t i = 1; i < consecutive_failures && delay > 0 && delay < max; ++i) delay *= 2;
  delay = std::min(delay, max) * jitter;
  return Duration(static_cast<Duration::rep>(delay + 0.5));
}

void WorkerProcess::spawn() {
  assert(child_ == nullptr);
  std::vector<std::string> argv = expandedArgs(config_, state_dir_);
  std::vector<std::string> env = expandedEnv(config_, state_dir_);
  std::vector<char*> argv_pointers = nullTerminated(argv);
  std::vector<char*> env_pointers = nullTerminated(env);

  // Worker logs land where the proxy's do.
  uv_stdio_container_t stdio[3];
  inheritOutput(stdio);

  uv_process_options_t options{};
  options.exit_cb = &WorkerProcess::onChildExit;
  options.file = argv[0].c_str();  // libuv execs with execvp: PATH search when there is no '/'
  options.args = argv_pointers.data();
  options.env = env_pointers.data();
  options.stdio_count = 3;
  options.stdio = stdio;
  // libuv's child drops its supplementary groups, then calls setgid and setuid before exec.
  if (run_as_ && ::geteuid() == 0) {
    options.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    options.uid = run_as_->uid;
    options.gid = run_as_->gid;
  }

  auto* child = new Child;
  child->owner = this;
  const int error = uv_spawn(loop_, &child->handle, &options);
  child->handle.data = child;
  started_at_ = std::chrono::steady_clock::now();

  if (error != 0) {
    // libuv initialised the handle even though nothing runs: it still has to be closed.
    child->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&child->handle), &WorkerProcess::onChildClosed);
    ++failures_;
    last_exit_ = std::string("cannot start: ") + uv_strerror(error);
    logLine("worker " + config_.name + ": cannot start " + argv[0] + ": " + uv_strerror(error) +
            " (" + uv_err_name(error) + ")");
    std::shared_ptr<bool> alive = alive_;
    // A copy, so that the callback may destroy this object (and callbacks_) while it runs.
    if (auto on_spawn_failed = callbacks_.on_spawn_failed) {
      on_spawn_failed(error);
      if (!*alive) return;
    }
    scheduleRespawn();
    return;
  }

  child_ = child;
  pid_ = child->handle.pid;
  term_sent_ = false;
  logLine("worker " + config_.name + " started (pid " + std::to_string(pid_) + "): " + argv[0]);
  if (auto on_spawned = callbacks_.on_spawned) on_spawned(pid_);
}

void WorkerProcess::onChildExit(uv_process_t* process, int64_t exit_status, int term_signal) {
  auto* child = static_cast<Child*>(process->data);
  WorkerProcess* owner = child->owner;
  uv_close(reinterpret_cast<uv_handle_t*>(process), &WorkerProcess::onChildClosed);
  if (owner != nullptr) owner->handleExit(exit_status, term_signal);
}

void WorkerProcess::onChildClosed(uv_handle_t* handle) {
  delete static_cast<Child*>(handle->data);
}

void WorkerProcess::handleExit(int64_t exit_status, int term_signal) {
  const auto ran_for = std::chrono::steady_clock::now() - started_at_;
  const bool asked_for = !want_running_ || restart_requested_;
  logLine("worker " + config_.name + " (pid " + std::to_string(pid_) +
          ") exited: " + describeExit(exit_status, term_signal));
  child_ = nullptr;
  pid_ = 0;
  term_sent_ = false;
  kill_timer_.stop();
  last_exit_ = describeExit(exit_status, term_signal);
  if (!asked_for) {
    // A process that stayed up long enough was healthy: this exit starts a new count.
    failures_ = ran_for >= supervisor_.stable_after ? 1 : failures_ + 1;
  }

  // Callbacks may call back into this object or destroy it: state is settled before each,
  // each runs from a local copy, and nothing is touched after one destroyed the object.
  std::shared_ptr<bool> alive = alive_;
  std::vector<std::function<void()>> stopped = std::move(stop_done_);
  stop_done_.clear();
  if (auto on_exited = callbacks_.on_exited) {
    on_exited(exit_status, term_signal);
    if (!*alive) return;
  }
  for (auto& done : stopped) {
    done();
    if (!*alive) return;
  }
  scheduleRespawn();
}

void WorkerProcess::scheduleRespawn() {
  if (!want_running_ || running() || respawn_timer_.armed()) return;
  if (restart_requested_) {
    restart_requested_ = false;
    spawn();
    return;
  }
  const Duration delay = backoffDelay(supervisor_, std::max<uint32_t>(failures_, 1), drawJitter());
  if (failures_ >= kCrashLoopExits) {
    logLine("worker " + config_.name + " is crash-looping: " + std::to_string(failures_) +
            " exits in a row (last: " + last_exit_ + "); next start in " + seconds(delay));
  }
  // Loop time was cached before the callbacks that brought us here ran; without the update
  // the timer could fire early by however long they took.
  uv_update_time(loop_);
  respawn_timer_.start(delay, [this] {
    ++restarts_;
    spawn();
  });
}

void WorkerProcess::terminate() {
  if (term_sent_ || !running()) return;
  term_sent_ = true;
  const int error = signalProcess(SIGTERM);
  if (error != 0 && error != UV_ESRCH) {
    logLine("worker " + config_.name + ": SIGTERM to pid " + std::to_string(pid_) +
            " failed: " + uv_strerror(error));
  }
  uv_update_time(loop_);
  kill_timer_.start(supervisor_.stop_grace, [this] { killNow(); });
}

void WorkerProcess::killNow() {
  if (!running()) return;
  logLine("worker " + config_.name + " (pid " + std::to_string(pid_) + ") still running " +
          seconds(supervisor_.stop_grace) + " after SIGTERM: sending SIGKILL");
  const int error = signalProcess(SIGKILL);
  if (error != 0 && error != UV_ESRCH) {
    logLine("worker " + config_.name + ": SIGKILL to pid " + std::to_string(pid_) +
            " failed: " + uv_strerror(error));
  }
}

std::string describeExit(int64_t exit_status, int term_signal) {
  if (exit_status < 0 && term_signal == 0) return "exit (status unknown: adopted from the previous proxy)";
  if (term_signal != 0) {
    const char* description = strsignal(term_signal);
    return "signal " + std::to_string(term_signal) + " (" +
           (description != nullptr ? description : "unknown") + ")";
  }
  return "exit status " + std::to_string(exit_status);
}

}  // namespace stickyproxy
