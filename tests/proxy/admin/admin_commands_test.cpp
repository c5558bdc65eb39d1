#include "proxy/admin/admin_commands.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "tests/proxy/admin/fake_worker_control.h"
#include "tests/proxy/net/loop_test_support.h"

namespace stickyproxy {
namespace {

using testing::FakeWorkerControl;
using testing::TestLoop;

struct CommandsFixture {
  TestLoop loop;
  FakeWorkerControl control{loop.get(), {"w1"}, "/etc/stickyproxy/test.conf"};
  AdminCommands commands{control};

  // The answer to `line` (given at once by every command of FakeWorkerControl).
  std::string ask(const std::string& line) {
    std::string answer = "(no answer)";
    commands.execute(line, [&](const std::string& text) { answer = text; });
    return answer;
  }
};

}  // namespace

TEST_CASE("admin help lists every command, one line each", "[admin]") {
  CommandsFixture f;
  CHECK(f.ask("help") ==
        "commands (append \"json\" to any for a JSON answer):\n"
        "  help                          this text\n"
        "  show workers                  state, pid, uptime, sessions, requests... per worker\n"
        "  show sessions [WORKER]        active and moved sessions per worker\n"
        "  drain WORKER                  no new sessions; its active sessions keep reaching it\n"
        "  drain WORKER wait [SECONDS]   drain, and answer once drained or after SECONDS (default 60)\n"
        "  ready WORKER                  back in rotation for new sessions\n"
        "  evict WORKER                  drain, and move its sessions now (announced to the app)\n"
        "  restart WORKER [SECONDS]      drain (waiting up to SECONDS), stop, respawn, ready\n"
        "  reload                        re-read the configuration file (as SIGHUP)\n"
        "  upgrade                       start the proxy's binary anew; it takes over sockets and workers, this one exits");
}

TEST_CASE("admin upgrade answers what the proxy's upgrade reports", "[admin][upgrade]") {
  CommandsFixture f;
  // The fake has no upgrade of its own: WorkerControl's answer.
  CHECK(f.ask("upgrade") == "error: binary upgrades are not available here");
  CHECK(f.ask("upgrade now") == "error: unknown command \"upgrade now\"; try \"help\"");
  CHECK(f.ask("upgrade json") == "{\"error\":\"binary upgrades are not available here\",\"ok\":false}");
}

TEST_CASE("admin commands with the wrong words or arguments get the error that names the problem", "[admin]") {
  CommandsFixture f;
  CHECK(f.ask("") == "error: empty command; try \"help\"");
  CHECK(f.ask("json") == "{\"error\":\"empty command; try \\\"help\\\"\",\"ok\":false}");
  CHECK(f.ask("help me") == "error: unknown command \"help me\"; try \"help\"");
  CHECK(f.ask("show") == "error: unknown command \"show\"; try \"help\"");
  CHECK(f.ask("show workers now") == "error: unknown command \"show workers now\"; try \"help\"");
  CHECK(f.ask("show sessions w9") == "error: unknown worker \"w9\"");
  CHECK(f.ask("reload now") == "error: unknown command \"reload now\"; try \"help\"");
  CHECK(f.ask("drain") == "error: drain needs a worker name; try \"help\"");
  CHECK(f.ask("drain w9") == "error: unknown worker \"w9\" (workers: w1)");
  CHECK(f.ask("drain w1 wait 5 more") == "error: unexpected \"more\" after drain; try \"help\"");
  CHECK(f.ask("drain w1 soon") == "error: expected \"wait\" after the worker name, not \"soon\"");
  CHECK(f.ask("drain w1 wait 3601") == "error: \"3601\" is not a number of seconds (0 to 3600)");
  CHECK(f.ask("ready w1 now") == "error: unexpected \"now\" after ready; try \"help\"");
  CHECK(f.ask("restart w1 5 now") == "error: unexpected \"now\" after restart; try \"help\"");
  CHECK(f.ask("restart w1") == "error: w1 is an external worker (no command): the proxy cannot restart it");
}

TEST_CASE("admin commands answer in words or in JSON", "[admin]") {
  CommandsFixture f;
  CHECK(f.ask("drain w1") == "w1 is draining: no new sessions");
  CHECK(f.ask("drain w1 wait 5") == "w1 drained");
  CHECK(f.ask("ready w1 json") == "{\"ok\":true,\"state\":\"ready\",\"worker\":\"w1\"}");
  const auto now = std::chrono::system_clock::now();
  f.control.table().touch(1, "w1", now);
  f.control.table().touch(2, "w1", now);
  CHECK(f.ask("evict w1") ==
        "w1 evicted: 2 sessions moved (announced with X-Sticky-Previous-Worker); it is draining until \"ready w1\"");
  CHECK(f.ask("show sessions w1") == "NAME      ACTIVE    MOVED_HERE\nw1        2         0");
  CHECK(f.ask("reload") == "configuration reloaded from /etc/stickyproxy/test.conf");
  f.control.reload_ok = false;
  CHECK(f.ask("reload json") ==
        "{\"error\":\"reload rejected, the running configuration is kept (the proxy's log has the problems)\","
        "\"ok\":false}");
}

}  // namespace stickyproxy
