// stickyproxy: the sticky-session front proxy.
//
//   stickyproxy -c FILE        run
//   stickyproxy -t -c FILE     check the configuration and exit
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "proxy/config/config.h"
#include "proxy/core/access_log.h"
#include "proxy/core/proxy.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/signal_watcher.h"

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
    "Signals: SIGTERM/SIGINT stop gracefully (requests in flight finish, workers get\n"
    "SIGTERM, then SIGKILL after supervisor.stop_grace); SIGHUP reloads the configuration.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool test_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config") {
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
    std::printf("stickyproxy: %s: configuration is valid (%zu workers)\n", config_path.c_str(),
                loaded.config->workers.size());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    LoopContext context(&loop);
    auto proxy = std::make_unique<Proxy>(&loop, std::move(*loaded.config));
    std::vector<std::unique_ptr<SignalWatcher>> signals;
    auto stop = [&] {
      proxy->shutdown([&] {
        for (auto& watcher : signals) watcher->close();
        // Everything is stopped; do not let a forgotten timer keep the process alive.
        uv_stop(&loop);
      });
    };
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGTERM, stop));
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGINT, stop));
    signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGHUP, [&] { proxy->reload(); }));
    proxy->start([&](int status) {
      if (status != 0) {
        logError("cannot listen: " + uvErrorText(status));
        exit_code = 1;
        stop();
      }
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    // Destroying the proxy closes its remaining handles; their close callbacks run below,
    // while the loop context still exists.
    proxy.reset();
    for (auto& watcher : signals) watcher->close();
    uv_run(&loop, UV_RUN_NOWAIT);
    context.close();
  }
  uv_loop_close(&loop);
  return exit_code;
}
