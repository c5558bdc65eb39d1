// The systemd notify protocol as the unit (Type=notify, WatchdogSec=) sees it: a datagram
// socket of the test stands in for systemd's NOTIFY_SOCKET.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

using namespace stickyproxy::integration;
using namespace std::chrono_literals;

namespace {

// Receives what the proxy sends to NOTIFY_SOCKET, one datagram per message.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (fd_ < 0 || path.size() >= sizeof address.sun_path) throw HarnessError("cannot make the notify socket");
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw HarnessError("cannot bind the notify socket " + path);
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The messages that arrive until one passes `wanted` (returned last) or `deadline` passes.
  std::vector<std::string> until(const std::function<bool(const std::string&)>& wanted,
                                 std::chrono::milliseconds deadline) {
    std::vector<std::string> seen;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
      pollfd ready{fd_, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (::poll(&ready, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0) continue;
      char buffer[4096];
      ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) continue;
      seen.emplace_back(buffer, static_cast<size_t>(got));
      if (wanted(seen.back())) return seen;
    }
    return seen;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

bool has(const std::string& message, const std::string& line) {
  return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
}

bool startsWithLine(const std::string& message, const std::string& prefix) {
  return ("\n" + message).find("\n" + prefix) != std::string::npos;
}

}  // namespace

TEST_CASE("under systemd the proxy says READY once its workers answer, RELOADING and READY around a reload, "
          "WATCHDOG from its loop, its status, and STOPPING",
          "[integration][proxy][systemd]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker"));
  NotifySocket notify(proxy.dir().file("notify.sock"));
  proxy.setEnvironment({"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000"});
  proxy.start();

  auto seen = notify.until([](const std::string& m) { return has(m, "READY=1"); }, 10s);
  REQUIRE_FALSE(seen.empty());
  REQUIRE(has(seen.back(), "READY=1"));
  CHECK(has(seen.back(), "STATUS=2 of 2 workers ready, 0 sessions, 0 requests in flight"));
  // Not before both workers had answered their health checks.
  const std::string log = proxy.logText();
  CHECK(log.find("worker w1 is ready") != std::string::npos);
  CHECK(log.find("worker w2 is ready") != std::string::npos);

  // WATCHDOG=1 every 100 ms (half of WATCHDOG_USEC).
  int pings = 0;
  auto start = std::chrono::steady_clock::now();
  notify.until([&](const std::string& m) { return has(m, "WATCHDOG=1") && ++pings == 5; }, 5s);
  CHECK(pings == 5);
  CHECK(std::chrono::steady_clock::now() - start < 2s);

  // A session, then the periodic status line counts it.
  HttpClient client = proxy.client(10s);
  client.useCookieJar();
  REQUIRE(client.get("/whoami").status == 200);
  REQUIRE(client.get("/whoami").status == 200);  // back with its routing cookie
  seen = notify.until([](const std::string& m) { return startsWithLine(m, "STATUS=2 of 2 workers ready, 1 sessions"); },
                      8s);
  REQUIRE_FALSE(seen.empty());
  CHECK(startsWithLine(seen.back(), "STATUS=2 of 2 workers ready, 1 sessions"));

  // A reload: RELOADING=1, then READY=1 with the outcome.
  proxy.reload();
  seen = notify.until([](const std::string& m) { return has(m, "READY=1"); }, 10s);
  bool reloading = false;
  for (const std::string& message : seen) reloading = reloading || has(message, "RELOADING=1");
  CHECK(reloading);
  REQUIRE(has(seen.back(), "READY=1"));
  CHECK(startsWithLine(seen.back(), "STATUS=reloaded; 2 of 2 workers ready"));

  // A config that does not load: the reload is rejected and systemd hears so.
  proxy.rewriteConfig("[proxy]\nlisten = nonsense\n");
  proxy.reload();
  seen = notify.until([](const std::string& m) { return has(m, "READY=1"); }, 10s);
  REQUIRE_FALSE(seen.empty());
  CHECK(startsWithLine(seen.back(), "STATUS=reload rejected, the running configuration kept; 2 of 2 workers ready"));
  REQUIRE(client.get("/whoami").status == 200);

  // SIGTERM (by stop(), which waits for the exit): STOPPING=1, kept in the socket meanwhile.
  int status = proxy.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  seen = notify.until([](const std::string& m) { return has(m, "STOPPING=1"); }, 10s);
  REQUIRE_FALSE(seen.empty());
  CHECK(has(seen.back(), "STOPPING=1"));
}
