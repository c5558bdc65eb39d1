// stickyproxy: the sticky-session front proxy.
//
//   stickyproxy -c FILE        run
//   stickyproxy -t -c FILE     check the configuration and exit
//   stickyproxy ctl -c FILE COMMAND...   send one command to a running proxy's admin socket
//   stickyproxy upgrade -c FILE          replace the running proxy by its binary, started anew
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/admin/admin_service.h"
#include "proxy/config/config.h"
#include "proxy/core/access_log.h"
#include "proxy/core/handover.h"
#include "proxy/core/proxy.h"
#include "proxy/core/service_notifier.h"
#include "proxy/core/tls_termination.h"
#include "proxy/core/upgrade_coordinator.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/signal_watcher.h"
#include "proxy/net/timer.h"
#include "proxy/supervisor/service_account.h"
#include "proxy/supervisor/worker_process.h"

using namespace stickyproxy;

namespace {

constexpr const char* kUsage =
    "usage: stickyproxy [-t] -c FILE\n"
    "       stickyproxy --version | --help\n"
    "\n"
    "  -c, --config FILE  the configuration file (format: conf/README.md)\n"
    "  -t, --test         check the configuration, print every problem, and exit:\n"
    "                     0 when it is valid, 1 otherwise\n"
    "  --version          print the version and exit\n"
    "  --help             print this help and exit\n"
    "\n"
    "       stickyproxy ctl -c FILE COMMAND...\n"
    "  sends COMMAND to the admin socket of the proxy running with FILE and prints the\n"
    "  answer; exits 1 when the command failed (an \"error:\" or \"timeout:\" answer),\n"
    "  2 on bad usage. \"stickyproxy ctl -c FILE help\" lists the commands.\n"
    "\n"
    "       stickyproxy upgrade -c FILE\n"
    "  a binary upgrade without a dropped request: the proxy running with FILE starts its\n"
    "  executable (as installed now) with --take-over, which takes its listening sockets and\n"
    "  worker processes; the old process finishes its requests in flight and exits. Prints\n"
    "  the outcome; exits 1 when the new process did not take over (the old one serves on).\n"
    "  (--take-over is that start: FILE's admin socket names the proxy to take over from.)\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully (requests in flight finish, workers get\n"
    "SIGTERM, then SIGKILL after supervisor.stop_grace); SIGHUP reloads the configuration.\n";

// Longest each step of a take-over may take (receiving the handover, the predecessor's release).
constexpr std::chrono::seconds kHandoverTimeout{30};
// A successor has the workers' start-up timeout and this much more to say "taken" (a silent or
// hung one is given up, and this process serves on).
constexpr std::chrono::seconds kTakeOverMargin{10};

// Longest an admin answer may take: the longest wait a command may ask for, plus a restart.
constexpr int kCtlTimeoutMs = (3600 + 300) * 1000;

// `stickyproxy ctl -c FILE COMMAND...`: one command over the admin socket.
int runCtl(int argc, char** argv) {
  std::string config_path;
  std::string command;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && command.empty()) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "stickyproxy ctl: %s needs a file\n", arg.c_str());
        return 2;
      }
      config_path = argv[++i];
    } else {
      command += (command.empty() ? "" : " ") + arg;
    }
  }
  if (config_path.empty() || command.empty()) {
    std::fprintf(stderr, "usage: stickyproxy ctl -c FILE COMMAND...   (try COMMAND = help)\n");
    return 2;
  }
  if (command.find('\n') != std::string::npos || command.find('\r') != std::string::npos) {
    std::fprintf(stderr, "stickyproxy ctl: a command is one line\n");
    return 2;
  }
  ConfigLoadResult loaded = loadConfig(config_path);
  if (!loaded.config) {
    for (const ConfigError& error : loaded.errors) std::fprintf(stderr, "%s\n", error.toString().c_str());
    return 1;
  }
  const std::string& path = loaded.config->admin_socket;
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    std::fprintf(stderr, "stickyproxy ctl: %s: no usable proxy.admin_socket\n", config_path.c_str());
    return 1;
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::fprintf(stderr, "stickyproxy ctl: cannot connect to %s: %s (is the proxy running?)\n", path.c_str(),
                 std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return 1;
  }
  std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "stickyproxy ctl: cannot send to %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      return 1;
    }
    sent += static_cast<size_t>(n);
  }
  // The proxy answers what it got, then closes: the end of the answer is EOF.
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buffer[4096];
  for (;;) {
    pollfd waiting{fd, POLLIN, 0};
    int ready = ::poll(&waiting, 1, kCtlTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      std::fprintf(stderr, "stickyproxy ctl: no answer from %s\n", path.c_str());
      ::close(fd);
      return 1;
    }
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::fprintf(stderr, "stickyproxy ctl: reading from %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      return 1;
    }
    if (n == 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  // Every answer ends with an empty line (for interactive clients): print it without.
  while (answer.size() >= 2 && answer.compare(answer.size() - 2, 2, "\n\n") == 0) answer.pop_back();
  if (answer.empty()) {
    std::fprintf(stderr, "stickyproxy ctl: the proxy closed the connection without an answer\n");
    return 1;
  }
  std::fputs(answer.c_str(), stdout);
  bool failed = answer.rfind("error", 0) == 0 || answer.rfind("timeout", 0) == 0 ||
                (answer.front() == '{' && answer.find("\"ok\":false") != std::string::npos);
  return failed ? 1 : 0;
}

// The path this process was started from, read before anything can replace the file (an
// upgrade runs what is installed there then).
std::string ownExecutable() {
  char path[4096];
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return {};
  std::string text(path, static_cast<size_t>(length));
  const std::string deleted = " (deleted)";
  if (text.size() > deleted.size() && text.compare(text.size() - deleted.size(), deleted.size(), deleted) == 0) {
    text.resize(text.size() - deleted.size());
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "ctl") return runCtl(argc, argv);
  if (argc >= 2 && std::string(argv[1]) == "upgrade") {
    // "upgrade -c FILE" is "ctl -c FILE upgrade".
    std::vector<char*> args(argv, argv + argc);
    std::string command = "upgrade";
    args.push_back(command.data());
    return runCtl(static_cast<int>(args.size()), args.data());
  }
  const std::string executable = ownExecutable();
  std::string config_path;
  bool test_only = false;
  bool take_over = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--take-over") {
      take_over = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "stickyproxy: %s needs a file\n%s", arg.c_str(), kUsage);
        return 2;
      }
      config_path = argv[++i];
    } else if (arg == "-t" || arg == "--test") {
      test_only = true;
    } else if (arg == "--version" || arg == "-v") {
      std::printf("stickyproxy %s\n", STICKYPROXY_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "stickyproxy: unknown argument \"%s\"\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "stickyproxy: no configuration file given (-c FILE)\n%s", kUsage);
    return 2;
  }

  ConfigLoadResult loaded = loadConfig(config_path);
  for (const ConfigError& error : loaded.errors) std::fprintf(stderr, "%s\n", error.toString().c_str());
  if (!loaded.config) {
    std::fprintf(stderr, "stickyproxy: %s: %zu problem%s found\n", config_path.c_str(), loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
    return 1;
  }
  if (test_only) {
    // The accounts must exist on the host that checks; whether they fit who starts the proxy is
    // checked at start.
    std::vector<std::string> problems = serviceAccountProblems(*loaded.config);
    // Certificates and keys are loaded as the running proxy would (readable, matching).
    std::string tls_error;
    if (loaded.config->tls.enabled && !TlsTermination::check(loaded.config->tls, &tls_error)) {
      problems.push_back(config_path + ": tls: " + tls_error);
    }
    for (const std::string& problem : problems) std::fprintf(stderr, "%s\n", problem.c_str());
    if (!problems.empty()) {
      std::fprintf(stderr, "stickyproxy: %s: %zu problem%s found\n", config_path.c_str(), problems.size(),
                   problems.size() == 1 ? "" : "s");
      return 1;
    }
    std::printf("stickyproxy: %s: configuration is valid (%zu workers)\n", config_path.c_str(),
                loaded.config->workers.size());
    return 0;
  }

  // Who to serve as ([proxy] user): decided before anything is bound or spawned.
  ServiceAccountCheck account_check = resolveServiceAccount(*loaded.config, ::geteuid(), ::getegid());
  if (!account_check.account) {
    std::fprintf(stderr, "stickyproxy: %s\n", account_check.error.c_str());
    return 1;
  }
  const ServiceAccount account = *account_check.account;
  if (std::string problem = prepareServiceDirectories(*loaded.config, account); !problem.empty()) {
    std::fprintf(stderr, "stickyproxy: %s\n", problem.c_str());
    return 1;
  }

  // A binary upgrade's new process: the running proxy's sockets and workers, received before
  // anything is bound or spawned.
  std::unique_ptr<HandoverClient> handover;
  if (take_over) {
    handover = std::make_unique<HandoverClient>();
    std::string error;
    if (!handover->receive(loaded.config->admin_socket, kHandoverTimeout, &error)) {
      std::fprintf(stderr, "stickyproxy: --take-over: %s\n", error.c_str());
      return 1;
    }
    // systemd names the process it expects watchdog pings from; after the hand-over that is this
    // one (the predecessor sends MAINPID= for it).
    if (const char* watched = std::getenv("WATCHDOG_PID"); watched != nullptr && *watched != '\0') {
      ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    }
    logInfo("taking over from pid " + std::to_string(handover->state().pid) + " (stickyproxy " +
            handover->state().version + "): " + std::to_string(handover->state().sockets.size()) + " sockets, " +
            std::to_string(handover->state().workers.size()) + " workers");
  }

  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    LoopContext context(&loop);
    auto proxy = std::make_unique<Proxy>(&loop, std::move(*loaded.config));
    const std::string state_dir = proxy->config().state_dir;
    // The admin socket drives the proxy: created after it, destroyed before it.
    auto admin = std::make_unique<AdminService>(&loop, *proxy);
    proxy->setReloadListener([&](const Config& config) { admin->applyConfig(config); });
    std::vector<std::unique_ptr<SignalWatcher>> signals;
    // systemd hears when the workers answer, around reloads and at the stop; STATUS= carries
    // the workers' summary every few seconds.
    auto notifier = std::make_unique<ServiceNotifier>(&loop);
    auto status_timer = std::make_unique<Timer>(&loop);
    auto statusLine = [&] { return serviceStatusLine(proxy->metricsSnapshot()); };
    auto closeSignals = [&] {
      for (auto& watcher : signals) watcher->close();
      // Everything is stopped; do not let a forgotten timer keep the process alive.
      uv_stop(&loop);
    };
    auto stop = [&] {
      status_timer->stop();
      notifier->stopping("stopping: finishing requests in flight");
      admin->close();  // removes the socket file
      proxy->shutdown(closeSignals);
    };
    // After a successor took over (or a take-over failed): sockets and workers stay as they are.
    auto retire = [&] {
      status_timer->stop();
      admin->release();
      proxy->handOver(closeSignals);
    };
    auto upgrades = std::make_unique<UpgradeCoordinator>(
        &loop, executable, config_path, proxy->config().supervisor.startup_timeout + kTakeOverMargin,
        UpgradeCoordinator::Hooks{
            [&] {
              HandoverState state = proxy->handoverState();
              if (admin->listeningFd() >= 0) {
                state.sockets.push_back(
                    HandedSocket{"admin", Endpoint::unixPath(proxy->config().admin_socket), admin->listeningFd()});
              }
              return state;
            },
            [&](std::function<void()> done) { proxy->saveRoutingState(std::move(done)); },
            [&](pid_t successor) {
              notifier->handOver(successor, "handed over to pid " + std::to_string(successor));
              retire();
            },
            [&] { proxy->resumeSavingRoutingState(); }});
    admin->setConnectionTaker([&](const std::string& line, int fd) { return upgrades->takeConnection(line, fd); });
    proxy->setUpgradeHandler([&](Proxy::RestartDone done) { upgrades->upgrade(std::move(done)); });
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGTERM, stop));
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGINT, stop));
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGHUP, [&] {
      notifier->reloading("reloading " + config_path);
      bool applied = proxy->reload();
      notifier->ready((applied ? "reloaded; " : "reload rejected, the running configuration kept; ") + statusLine());
    }));
    if (handover) {
      // Workers follow the pid in the state directory when this process's predecessor exits:
      // it names this process before the predecessor lets go, and the predecessor again if it
      // does not.
      proxy->setAcceptGate([&] {
        const pid_t predecessor = handover->state().pid;
        std::string error;
        if (!WorkerProcess::claimSupervision(state_dir, ::getpid(), &error)) logError("take-over: " + error);
        if (handover->confirm(kHandoverTimeout, &error)) {
          logInfo("took over from pid " + std::to_string(predecessor));
          return true;
        }
        if (::kill(predecessor, 0) != 0 && errno == ESRCH) {
          logInfo("take-over: pid " + std::to_string(predecessor) + " is gone (" + error + "); serving in its place");
          return true;
        }
        logError("take-over failed: " + error + "; pid " + std::to_string(predecessor) + " serves on");
        WorkerProcess::claimSupervision(state_dir, predecessor, &error);
        return false;
      });
    }
    bool started = proxy->start(
        [&](int status) {
          if (status != 0 && handover) {
            exit_code = 1;
            retire();
            return;
          }
          if (status != 0) {
            logError("cannot listen: " + uvErrorText(status));
            exit_code = 1;
            stop();
            return;
          }
          if (handover) {
            Address admin_address;
            admin_address.kind = Address::Kind::kUnix;
            admin_address.path = proxy->config().admin_socket;
            std::optional<HandedSocket> socket = handover->state().takeSocket("admin", admin_address);
            if (socket) {
              admin->adopt(proxy->config(), socket->fd);
            } else {
              admin->start(proxy->config());
            }
            handover->state().closeUntaken();
          }
          notifier->ready(statusLine());
          if (notifier->enabled()) status_timer->startRepeating(std::chrono::seconds(5), [&] { notifier->status(statusLine()); });
        },
        handover ? &handover->state() : nullptr);
    if (started && !handover) {
      admin->start(proxy->config());
      std::string error;
      if (!WorkerProcess::claimSupervision(state_dir, ::getpid(), &error)) logError(error);
    }
    // Every socket is bound now (metrics, public and TLS listeners, the admin socket) and the
    // loop has not run: nothing was read from anyone yet. Leave root here, before the workers'
    // health checks and the first client.
    if (started && account.switch_needed && ::geteuid() == 0) {
      if (std::string problem = handOverToServiceAccount(proxy->config(), account); !problem.empty()) {
        logError("cannot drop root: " + problem + "; stopping");
        exit_code = 1;
        stop();
      } else {
        logInfo("serving as " + account.user + ":" + account.group + " (uid " + std::to_string(account.uid) +
                ", gid " + std::to_string(account.gid) + ")");
      }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    // Destroying the proxy closes its remaining handles; their close callbacks run below,
    // while the loop context still exists.
    status_timer.reset();
    notifier.reset();
    upgrades.reset();
    admin.reset();
    proxy.reset();
    for (auto& watcher : signals) watcher->close();
    uv_run(&loop, UV_RUN_NOWAIT);
    context.close();
  }
  if (int closed = uv_loop_close(&loop); closed != 0) {
    // A handle nobody closed: a leak that would one day be a use-after-free. Name them.
    std::string open_handles;
    uv_walk(
        &loop,
        [](uv_handle_t* handle, void* names) {
          static_cast<std::string*>(names)->append(" ").append(uv_handle_type_name(uv_handle_get_type(handle)));
        },
        &open_handles);
    logError("event loop not empty at exit (" + uvErrorText(closed) + "):" + open_handles);
    if (exit_code == 0) exit_code = 70;
  }
  return exit_code;
}
