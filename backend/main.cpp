// stickyproxy-backend: one worker of the bundled analysis app.
//
//   stickyproxy-backend --name w1 --listen unix:/path/w1.sock --state-dir /var/lib/stickyproxy
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "backend/backend_app.h"
#include "proxy/http/http_server.h"
#include "proxy/net/loop_context.h"

using namespace stickyproxy;

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: stickyproxy-backend --name NAME --listen ADDRESS [--state-dir DIR]\n"
               "  ADDRESS is unix:/path/to.sock or host:port (IP literal)\n");
}

}  // namespace

int main(int argc, char** argv) {
  backend::BackendOptions options;
  std::string listen_text;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "stickyproxy-backend: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--name") {
      options.name = value();
    } else if (arg == "--listen") {
      listen_text = value();
    } else if (arg == "--state-dir") {
      options.state_dir = value();
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "stickyproxy-backend: unknown argument %s\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  auto endpoint = Endpoint::parse(listen_text);
  if (!endpoint) {
    std::fprintf(stderr, "stickyproxy-backend: --listen: invalid address \"%s\"\n", listen_text.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LoopContext context(&loop);
    backend::BackendApp app(options);
    HttpServer server(&loop, ServerOptions{}, [&app](const ServerExchangePtr& exchange) { app.handle(exchange); });
    int status = server.listen(*endpoint, 0600);
    if (status != 0) {
      std::fprintf(stderr, "stickyproxy-backend %s: cannot listen on %s: %s\n", options.name.c_str(),
                   listen_text.c_str(), uvErrorText(status).c_str());
      return 1;
    }
    std::fprintf(stderr, "stickyproxy-backend %s: listening on %s (pid %d)\n", options.name.c_str(),
                 server.boundEndpoint().toString().c_str(), static_cast<int>(getpid()));

    // SIGTERM / SIGINT: finish what is in flight, then exit 0.
    uv_signal_t term;
    uv_signal_t interrupt;
    bool stopping = false;
    auto on_signal = [&](int) {
      if (stopping) return;
      stopping = true;
      server.shutdown(std::chrono::seconds(5), [&] {
        uv_signal_stop(&term);
        uv_signal_stop(&interrupt);
        uv_close(reinterpret_cast<uv_handle_t*>(&term), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&interrupt), nullptr);
      });
    };
    struct SignalContext {
      std::function<void(int)> handler;
    } signal_context{on_signal};
    uv_signal_init(&loop, &term);
    uv_signal_init(&loop, &interrupt);
    term.data = &signal_context;
    interrupt.data = &signal_context;
    auto dispatch = [](uv_signal_t* handle, int signum) { static_cast<SignalContext*>(handle->data)->handler(signum); };
    uv_signal_start(&term, dispatch, SIGTERM);
    uv_signal_start(&interrupt, dispatch, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    context.close();
  }
  uv_loop_close(&loop);
  return 0;
}
