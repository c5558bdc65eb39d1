// The main() of a worker program on the shared HTTP stack (the bundled backend, the test
// worker): its command line, and running an HttpServer until SIGTERM or SIGINT. A library of its
// own (stickyproxy_server_process), so that the test worker links it without the app.
#pragma once

#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/http_server.h"
#include "proxy/net/endpoint.h"

namespace stickyproxy::backend {

// What every worker program is started with (the proxy's worker `args` pass these).
struct ServerProcessOptions {
  std::string name = "w0";   // --name: echoed in X-Worker
  Endpoint listen;           // --listen unix:/path | host:port
  std::string state_dir;     // --state-dir
  ServerOptions server;      // --header-timeout-ms adjusts server.header_timeout
  // --session-idle-timeout-s: how long an app keeps an unused session (apps with sessions only).
  std::chrono::seconds session_idle_timeout{std::chrono::hours(24)};
  // --memory-budget-mib: parsed session data an app keeps in memory before evicting the least
  // recently used; nullopt leaves the app's default (apps with sessions only).
  std::optional<uint64_t> memory_budget_mib;
};

// Parses argv. Returns false after printing a message and usage to stderr (or usage to stdout
// for --help, with *exit_code 0); *exit_code is then what main() should return.
bool parseServerProcessArgs(int argc, char** argv, std::string_view program, ServerProcessOptions* options,
                            int* exit_code);

// Builds the application on `loop` and returns its request callback.
using AppFactory = std::function<HttpServer::RequestCallback(uv_loop_t* loop, const ServerProcessOptions& options)>;

// Runs a loop with an HttpServer on options.listen (a Unix socket gets mode 0600) serving the
// app until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish (at most
// `grace`) and returns main()'s exit code: 0, or 1 when it cannot listen.
int runServerProcess(const ServerProcessOptions& options, std::string_view program, const AppFactory& make_app,
                     std::chrono::milliseconds grace = std::chrono::seconds(5));

}  // namespace stickyproxy::backend
