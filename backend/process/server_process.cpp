#include "backend/process/server_process.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/process/supervisor_watch.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/signal_watcher.h"

namespace stickyproxy::backend {

namespace {

void printUsage(FILE* out, std::string_view program) {
  std::fprintf(out,
               "usage: %.*s --name NAME --listen ADDRESS [--state-dir DIR] [--header-timeout-ms N]\n"
               "       [--session-idle-timeout-s N] [--memory-budget-mib N]\n"
               "  ADDRESS is unix:/path/to.sock or host:port (an IP literal)\n",
               static_cast<int>(program.size()), program.data());
}

}  // namespace

bool parseServerProcessArgs(int argc, char** argv, std::string_view program, ServerProcessOptions* options,
                            int* exit_code) {
  std::string listen_text;
  std::string prefix(program);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      printUsage(stdout, program);
      *exit_code = 0;
      return false;
    }
    bool takes_value = arg == "--name" || arg == "--listen" || arg == "--state-dir" || arg == "--header-timeout-ms" ||
                       arg == "--session-idle-timeout-s" || arg == "--memory-budget-mib";
    if (!takes_value) {
      std::fprintf(stderr, "%s: unknown argument %s\n", prefix.c_str(), arg.c_str());
      printUsage(stderr, program);
      *exit_code = 2;
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", prefix.c_str(), arg.c_str());
      *exit_code = 2;
      return false;
    }
    std::string value = argv[++i];
    if (arg == "--name") {
      options->name = value;
    } else if (arg == "--listen") {
      listen_text = value;
    } else if (arg == "--state-dir") {
      options->state_dir = value;
    } else {
      char* end = nullptr;
      long long number = std::strtoll(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || number <= 0) {
        std::fprintf(stderr, "%s: %s: \"%s\" is not a positive number\n", prefix.c_str(), arg.c_str(), value.c_str());
        *exit_code = 2;
        return false;
      }
      if (arg == "--header-timeout-ms") {
        options->server.header_timeout = std::chrono::milliseconds(number);
      } else if (arg == "--memory-budget-mib") {
        options->memory_budget_mib = static_cast<uint64_t>(number);
      } else {
        options->session_idle_timeout = std::chrono::seconds(number);
      }
    }
  }
  auto endpoint = Endpoint::parse(listen_text);
  if (!endpoint) {
    std::fprintf(stderr, "%s: --listen: invalid address \"%s\"\n", prefix.c_str(), listen_text.c_str());
    printUsage(stderr, program);
    *exit_code = 2;
    return false;
  }
  options->listen = *endpoint;
  return true;
}

int runServerProcess(const ServerProcessOptions& options, std::string_view program, const AppFactory& make_app,
                     std::chrono::milliseconds grace) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string prefix = std::string(program) + " " + options.name;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  {
    LoopContext context(&loop);
    std::function<void()> on_supervisor_gone;
    // No worker outlives its supervisor holding its socket (even one killed with SIGKILL),
    // unless a successor adopted it.
    SupervisorWatch supervisor(&loop, prefix, [&] {
      if (on_supervisor_gone) on_supervisor_gone();
    });
    if (!supervisor.start()) {
      std::fprintf(stderr, "%s: its supervisor is already gone; exiting\n", prefix.c_str());
      supervisor.close();
      uv_run(&loop, UV_RUN_NOWAIT);
      context.close();
      uv_loop_close(&loop);
      return 1;
    }
    auto server = std::make_unique<HttpServer>(&loop, options.server, make_app(&loop, options));
    int status = server->listen(options.listen, 0600);
    if (status != 0) {
      std::fprintf(stderr, "%s: cannot listen on %s: %s\n", prefix.c_str(), options.listen.toString().c_str(),
                   uvErrorText(status).c_str());
      exit_code = 1;
    } else {
      std::fprintf(stderr, "%s: listening on %s (pid %d)\n", prefix.c_str(), server->boundEndpoint().toString().c_str(),
                   static_cast<int>(::getpid()));
      std::vector<std::unique_ptr<SignalWatcher>> signals;
      bool stopping = false;
      auto stop = [&] {
        if (stopping) return;
        stopping = true;
        supervisor.close();
        server->shutdown(grace, [&] {
          for (auto& watcher : signals) watcher->close();
        });
      };
      on_supervisor_gone = stop;
      signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGTERM, stop));
      signals.push_back(std::make_unique<SignalWatcher>(&loop, SIGINT, stop));
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    server.reset();
    supervisor.close();
    uv_run(&loop, UV_RUN_NOWAIT);
    context.close();
  }
  uv_loop_close(&loop);
  return exit_code;
}

}  // namespace stickyproxy::backend
