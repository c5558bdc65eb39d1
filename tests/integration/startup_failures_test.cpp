// stickyproxy when it cannot start: it says why, exits 1, starts no worker, and leaves the state
// on disk as it found it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/integration/harness.h"

using namespace stickyproxy::integration;

namespace {

// A socket listening on 127.0.0.1 at a port the kernel chose; closed with the object.
class BusyPort {
 public:
  BusyPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, 4) != 0) {
      throw HarnessError("cannot hold a port");
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~BusyPort() { ::close(fd_); }
  BusyPort(const BusyPort&) = delete;
  BusyPort& operator=(const BusyPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace

TEST_CASE("a listen address in use stops the proxy at once with exit 1, before any worker starts",
          "[integration][proxy]") {
  BusyPort busy;
  const std::string taken = "127.0.0.1:" + std::to_string(busy.port());
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.listen", taken}}));
  const int status = runProxyToExit({"-c", proxy.configPath()}, proxy.logPath());
  const std::string log = proxy.logText();
  INFO(log);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(log.find("cannot listen on " + taken + ": EADDRINUSE") != std::string::npos);
  CHECK(log.find("worker w1 started") == std::string::npos);
  CHECK(log.find("worker w2 started") == std::string::npos);
}

TEST_CASE("a routing secret that cannot be read stops the proxy and leaves the moved keys on disk as they were",
          "[integration][proxy]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2));
  proxy.start();
  HttpClient client = proxy.client(10s);
  const std::vector<std::string> keys = seededSessionKeys(30, 0x5ec);
  for (const std::string& key : keys) REQUIRE(client.get("/whoami", {{"Cookie", kCookieName + "=" + key}}).status == 200);
  // Move w1's sessions so that the state file has something to lose.
  REQUIRE(proxy.adminCommand("evict w1").find("evicted") != std::string::npos);
  for (const std::string& key : keys) REQUIRE(client.get("/whoami", {{"Cookie", kCookieName + "=" + key}}).status == 200);
  REQUIRE(proxy.stop() == 0);
  const std::string moved_keys = proxy.dir().file("state/moved-keys.json");
  const std::string before = readFile(moved_keys);
  REQUIRE(before.find("w1") != std::string::npos);

  // A secret readable by others is refused, as ssh refuses a loose private key.
  REQUIRE(::chmod(proxy.dir().file("routing-secret").c_str(), 0644) == 0);
  const int status = runProxyToExit({"-c", proxy.configPath()}, proxy.logPath());
  INFO(proxy.logText());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(proxy.logText().find("routing secret:") != std::string::npos);
  CHECK(readFile(moved_keys) == before);
}
