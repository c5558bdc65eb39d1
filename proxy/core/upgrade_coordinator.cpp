#include "proxy/core/upgrade_coordinator.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/core/access_log.h"
#include "proxy/net/fd_passing.h"
#include "proxy/supervisor/worker_process.h"

namespace stickyproxy {

namespace {
constexpr std::chrono::seconds kSendTimeout{5};
}  // namespace

struct UpgradeCoordinator::Successor {
  uv_process_t handle{};
  UpgradeCoordinator* owner = nullptr;  // cleared when the coordinator lets go
};

UpgradeCoordinator::UpgradeCoordinator(uv_loop_t* loop, std::string executable, std::string config_path,
                                       std::chrono::milliseconds take_over_timeout, Hooks hooks)
    : loop_(loop),
      executable_(std::move(executable)),
      config_path_(std::move(config_path)),
      take_over_timeout_(take_over_timeout),
      hooks_(std::move(hooks)),
      timer_(loop) {}

UpgradeCoordinator::~UpgradeCoordinator() {
  *alive_ = false;
  saved_ = false;  // the proxy stops: nothing to resume
  if (fd_ >= 0) finish("the proxy stopped");
  if (successor_ != nullptr) {
    // Never signalled: a successor that runs on is the one serving.
    successor_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&successor_->handle),
             [](uv_handle_t* handle) { delete static_cast<Successor*>(handle->data); });
    successor_ = nullptr;
  }
}

bool UpgradeCoordinator::takeConnection(const std::string& line, int fd) {
  if (line != "handover") return false;
  auto refuse = [fd](const std::string& why) {
    logError("upgrade: handover refused: " + why);
    std::string ignored;
    writeLine(fd, "error: " + why + "\n", kSendTimeout, &ignored);
    ::close(fd);
    return true;
  };
  // Only this account (or root) may take the sockets: the admin group may drive, not replace.
  ucred peer{};
  socklen_t length = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return refuse("no peer credentials");
  if (peer.uid != ::geteuid() && peer.uid != 0) {
    return refuse("uid " + std::to_string(peer.uid) + " may not take over this proxy");
  }
  if (fd_ >= 0 || handed_over_) return refuse("a handover is already in progress or done");
  fd_ = fd;
  peer_pid_ = peer.pid;
  logInfo("upgrade: pid " + std::to_string(peer_pid_) + " asks to take over");
  std::shared_ptr<bool> alive = alive_;
  hooks_.save([this, alive] {
    if (!*alive || fd_ < 0) return;
    saved_ = true;
    HandoverState state = hooks_.state();
    std::vector<int> fds;
    std::string json = handoverJson(state, &fds);
    std::string error;
    if (!sendMessageWithFds(fd_, json, fds, kSendTimeout, &error)) {
      finish("cannot send the handover: " + error);
      return;
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    uv_poll_init(loop_, poll_, fd_);
    uv_poll_start(poll_, UV_READABLE, &UpgradeCoordinator::onReadable);
    timer_.start(take_over_timeout_, [this] { finish("the new process did not take over in time"); });
  });
  return true;
}

void UpgradeCoordinator::onReadable(uv_poll_t* poll, int /*status*/, int /*events*/) {
  auto* self = static_cast<UpgradeCoordinator*>(poll->data);
  if (self != nullptr) self->readTaken();
}

void UpgradeCoordinator::readTaken() {
  char buffer[128];
  ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    finish("the new process went away before taking over");
    return;
  }
  input_.append(buffer, static_cast<size_t>(n));
  size_t end = input_.find('\n');
  if (end == std::string::npos) {
    if (input_.size() > 64) finish("the new process sent no \"taken\"");
    return;
  }
  std::string line = input_.substr(0, end);
  if (line != "taken " + std::to_string(peer_pid_)) {
    finish("the new process answered \"" + line.substr(0, 64) + "\"");
    return;
  }
  // Not accepting (and systemd told of the new main process) before the successor starts to.
  handed_over_ = true;
  hooks_.handed_over(peer_pid_);
  std::string error;
  if (!writeLine(fd_, "released\n", kSendTimeout, &error)) logError("upgrade: telling the new process: " + error);
  finish("");
}

void UpgradeCoordinator::finish(const std::string& outcome) {
  timer_.stop();
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  input_.clear();
  if (!outcome.empty() && saved_ && hooks_.abandoned) hooks_.abandoned();
  saved_ = false;
  if (outcome.empty()) {
    logInfo("upgrade: pid " + std::to_string(peer_pid_) + " serves now; this process (pid " +
            std::to_string(::getpid()) + ") finishes its requests in flight and exits");
    answerUpgrades(true, "upgraded: pid " + std::to_string(peer_pid_) + " serves now; pid " +
                             std::to_string(::getpid()) + " finishes its requests in flight and exits");
  } else {
    logError("upgrade failed: " + outcome + "; this process (pid " + std::to_string(::getpid()) + ") keeps serving");
    answerUpgrades(false, outcome + "; pid " + std::to_string(::getpid()) + " keeps serving");
  }
}

void UpgradeCoordinator::answerUpgrades(bool ok, const std::string& message) {
  std::vector<Done> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& done : waiting) done(ok, message);
}

void UpgradeCoordinator::upgrade(Done done) {
  if (handed_over_) {
    done(false, "this proxy already handed over to pid " + std::to_string(peer_pid_));
    return;
  }
  if (successor_ != nullptr || fd_ >= 0) {
    waiting_.push_back(std::move(done));  // the upgrade under way answers both
    return;
  }
  std::vector<std::string> args{executable_, "-c", config_path_, "--take-over"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Our output (the journal) and our environment (NOTIFY_SOCKET).
  uv_stdio_container_t stdio[3];
  WorkerProcess::inheritOutput(stdio);
  uv_process_options_t options{};
  options.file = executable_.c_str();
  options.args = argv.data();
  options.stdio_count = 3;
  options.stdio = stdio;
  // Its own session: it outlives this process, and a terminal's signals are not for it.
  options.flags = UV_PROCESS_DETACHED;
  options.exit_cb = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* successor = static_cast<Successor*>(process->data);
    UpgradeCoordinator* owner = successor->owner;
    uv_close(reinterpret_cast<uv_handle_t*>(process), [](uv_handle_t* handle) { delete static_cast<Successor*>(handle->data); });
    if (owner == nullptr) return;
    owner->successor_ = nullptr;
    if (owner->handed_over_) return;
    std::string how = term_signal != 0 ? "signal " + std::to_string(term_signal) : "status " + std::to_string(exit_status);
    if (owner->fd_ >= 0) {
      owner->finish("the new process exited (" + how + ") before taking over");
    } else {
      logError("upgrade failed: " + owner->executable_ + " exited (" + how + ") before taking over; this process keeps serving");
      owner->answerUpgrades(false, "the new process exited (" + how + ") before taking over; see the log; pid " +
                                       std::to_string(::getpid()) + " keeps serving");
    }
  };
  auto* successor = new Successor;
  successor->owner = this;
  successor->handle.data = successor;
  int error = uv_spawn(loop_, &successor->handle, &options);
  if (error != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&successor->handle),
             [](uv_handle_t* handle) { delete static_cast<Successor*>(handle->data); });
    done(false, "cannot start " + executable_ + ": " + uv_strerror(error));
    return;
  }
  successor_ = successor;
  waiting_.push_back(std::move(done));
  logInfo("upgrade: started " + executable_ + " (pid " + std::to_string(successor->handle.pid) + ") to take over");
}

}  // namespace stickyproxy
