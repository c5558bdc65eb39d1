// stickyproxy-backend: one worker of the bundled analysis app.
//
//   stickyproxy-backend --name w1 --listen unix:/path/w1.sock --state-dir /var/lib/stickyproxy
//                       [--session-idle-timeout-s 86400] [--memory-budget-mib 512]
#include <memory>

#include "backend/backend_app.h"
#include "backend/process/server_process.h"

using namespace stickyproxy;
using namespace stickyproxy::backend;

int main(int argc, char** argv) {
  ServerProcessOptions options;
  int exit_code = 0;
  if (!parseServerProcessArgs(argc, argv, "stickyproxy-backend", &options, &exit_code)) return exit_code;
  return runServerProcess(options, "stickyproxy-backend", [](uv_loop_t* loop, const ServerProcessOptions& process) {
    BackendOptions app_options;
    app_options.name = process.name;
    app_options.state_dir = process.state_dir;
    app_options.session_idle_timeout = process.session_idle_timeout;
    if (process.memory_budget_mib) app_options.memory_budget_bytes = static_cast<size_t>(*process.memory_budget_mib) << 20;
    auto app = std::make_shared<BackendApp>(loop, app_options);
    return [app](const ServerExchangePtr& exchange) { app->handle(exchange); };
  });
}
