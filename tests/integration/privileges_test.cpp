// [proxy] user, group and allow_root through the real binaries: started as root (as these tests and
// CI run), the proxy binds its sockets, spawns its workers as the account, gives it the state
// directory, the routing secret and the admin socket, and drops root before serving; without a
// user it refuses to serve as root unless allow_root = yes. The account is Debian's nobody:nogroup.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace stickyproxy::integration {
namespace {

constexpr uid_t kNobodyUid = 65534;
constexpr gid_t kNogroupGid = 65534;
const std::string kNobodyIds = "65534\t65534\t65534\t65534";

// The Uid: or Gid: line of /proc/<pid>/status without its name: "real effective saved filesystem".
std::string procIds(pid_t pid, const std::string& field) {
  std::string status = readFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("\n" + field + ":\t");
  if (at == std::string::npos) return "";
  size_t start = at + field.size() + 3;
  return status.substr(start, status.find('\n', start) - start);
}

struct stat statOf(const std::string& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info;
}

// As nobody (in a forked child): connects to the admin socket at `path` and sends `command`;
// true when an answer came back.
bool nobodyCanUseAdminSocket(const std::string& path, const std::string& command) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroupGid) != 0 || ::setuid(kNobodyUid) != 0) ::_exit(2);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) ::_exit(3);
    std::string line = command + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
    char answer[64];
    ::_exit(::read(fd, answer, sizeof answer) > 0 ? 0 : 5);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child " << describeWaitStatus(status));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Runs build/stickyproxy with `args` to its end (within 20 s); returns its waitpid status.
bool rootOrWarn() {
  if (::geteuid() == 0) return true;
  WARN("not root: the privilege tests need to start the proxy as root");
  return false;
}

TEST_CASE("started as root with user = nobody, the proxy and its workers serve as nobody",
          "[integration][proxy][privileges]") {
  if (!rootOrWarn()) return;
  // Worker sockets in a directory the proxy makes (and gives to nobody), not in the test's own dir.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker",
                                                      {{"proxy.user", "nobody"},
                                                       {"worker w1.address", "unix:@DIR@/sockets/w1.sock"},
                                                       {"worker w2.address", "unix:@DIR@/sockets/w2.sock"}}));
  // mkdtemp made the test's dir 0700: let nobody pass through it (not list it) to the state
  // directory, the worker sockets, the secret and the config that reloads read.
  REQUIRE(::chmod(proxy.dir().path().c_str(), 0711) == 0);
  proxy.start();

  // /ping answered: the listener accepts, so root is gone already.
  CHECK(procIds(proxy.pid(), "Uid") == kNobodyIds);
  CHECK(procIds(proxy.pid(), "Gid") == kNobodyIds);
  CHECK(procIds(proxy.pid(), "Groups").find_first_not_of(' ') == std::string::npos);  // none kept
  std::vector<pid_t> workers = proxy.childPids();
  REQUIRE(workers.size() == 2);
  for (pid_t worker : workers) {
    INFO("worker pid " << worker);
    CHECK(procIds(worker, "Uid") == kNobodyIds);
    CHECK(procIds(worker, "Gid") == kNobodyIds);
    CHECK(procIds(worker, "Groups").find_first_not_of(' ') == std::string::npos);
  }
  // Root was left once everything was bound, before anything was read from a worker (its health
  // checks) or a client.
  const std::string log = proxy.logText();
  const size_t dropped = log.find("serving as nobody:nogroup (uid 65534, gid 65534)");
  CHECK(dropped != std::string::npos);
  CHECK(dropped < log.find("worker w1 is ready"));
  CHECK(dropped < log.find("worker w2 is ready"));
  CHECK(dropped < log.find("stickyproxy: listening on"));  // the proxy's line, not a test-worker's

  HttpClient client = proxy.client(10s);
  for (int i = 0; i < 10; ++i) REQUIRE(client.get("/whoami").status == 200);

  // The state directory and the secret keep their modes and belong to nobody.
  const std::string state = proxy.dir().file("state");
  CHECK((statOf(state).st_mode & 07777) == 0700);
  CHECK(statOf(state).st_uid == kNobodyUid);
  CHECK(statOf(state).st_gid == kNogroupGid);
  const std::string secret = proxy.dir().file("routing-secret");
  CHECK((statOf(secret).st_mode & 07777) == 0600);
  CHECK(statOf(secret).st_uid == kNobodyUid);
  CHECK(statOf(proxy.dir().file("sockets")).st_uid == kNobodyUid);
  CHECK((statOf(proxy.adminSocketPath()).st_mode & 0777) == 0600);
  CHECK(statOf(proxy.adminSocketPath()).st_uid == kNobodyUid);
  CHECK(nobodyCanUseAdminSocket(proxy.adminSocketPath(), "show workers"));

  // A worker respawned by the proxy after the drop runs as nobody too.
  const pid_t killed = proxy.killWorker("w1");
  REQUIRE(proxy.waitForWorker("w1", [&](const WorkerStatus& w) { return w.state == "ready" && w.pid != killed; },
                              20s));
  const pid_t respawned = proxy.workerStatus("w1").pid;
  CHECK(procIds(respawned, "Uid") == kNobodyIds);
  CHECK(procIds(respawned, "Gid") == kNobodyIds);

  // A reload reads the config and the routing secret as nobody.
  proxy.reload();
  REQUIRE(waitUntil([&] { return proxy.logText().find("configuration reloaded") != std::string::npos; }, 10s));
  CHECK(proxy.logText().find("routing secret:") == std::string::npos);
  for (int i = 0; i < 10; ++i) REQUIRE(client.get("/whoami").status == 200);

  int status = proxy.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(proxy.leftoverWorkers().empty());
}

TEST_CASE("started as root without user or allow_root, the proxy refuses to serve and says why",
          "[integration][proxy][privileges]") {
  if (!rootOrWarn()) return;
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker", {{"proxy.allow_root", "no"}}));
  int status = runProxyToExit({"-c", proxy.configPath()}, proxy.logPath());
  INFO(proxy.logText());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(proxy.logText().find("proxy.user: refusing to serve as root") != std::string::npos);
  CHECK(proxy.logText().find("allow_root = yes") != std::string::npos);
  // It stopped before binding or spawning anything.
  CHECK_FALSE(canConnect(proxy.port()));
  CHECK_FALSE(canConnect(proxy.metricsPort()));
  CHECK(proxy.logText().find("worker w1") == std::string::npos);
}

TEST_CASE("started as root with a user whose workers could not listen, the proxy refuses before spawning",
          "[integration][proxy][privileges]") {
  if (!rootOrWarn()) return;
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker",
                                                      {{"proxy.user", "nobody"},
                                                       {"worker w1.address", "unix:@DIR@/sockets/w1.sock"}}));
  REQUIRE(::chmod(proxy.dir().path().c_str(), 0711) == 0);
  // A socket directory an earlier run as root left: it keeps its owner, so nobody could not bind.
  std::filesystem::create_directories(proxy.dir().file("sockets"));
  int status = runProxyToExit({"-c", proxy.configPath()}, proxy.logPath());
  INFO(proxy.logText());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(proxy.logText().find("worker w1: its socket directory cannot be used: " + proxy.dir().file("sockets") +
                             " (owner uid 0, gid 0, mode 0755) does not let nobody write to it") != std::string::npos);
  CHECK(proxy.logText().find("worker w1 started") == std::string::npos);
  CHECK_FALSE(canConnect(proxy.port()));
}

TEST_CASE("started as root with allow_root = yes and no user, the proxy serves as root",
          "[integration][proxy][privileges]") {
  if (!rootOrWarn()) return;
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker", {{"proxy.allow_root", "yes"}}));
  proxy.start();
  CHECK(proxy.client(10s).get("/whoami").status == 200);
  CHECK(procIds(proxy.pid(), "Uid") == "0\t0\t0\t0");
  for (pid_t worker : proxy.childPids()) CHECK(procIds(worker, "Uid") == "0\t0\t0\t0");
}

TEST_CASE("stickyproxy -t reports a user or group this host does not have", "[integration][proxy][privileges]") {
  ProxyUnderTest unknown(ProxyUnderTest::standardConfig(
      1, "test-worker", {{"proxy.user", "no-such-user-sp"}, {"proxy.group", "no-such-group-sp"}}));
  int status = runProxyToExit({"-t", "-c", unknown.configPath()}, unknown.logPath());
  INFO(unknown.logText());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(unknown.logText().find("proxy.user: no user \"no-such-user-sp\" on this host") != std::string::npos);
  CHECK(unknown.logText().find("proxy.group: no group \"no-such-group-sp\" on this host") != std::string::npos);
  CHECK(unknown.logText().find("2 problems found") != std::string::npos);

  ProxyUnderTest known(ProxyUnderTest::standardConfig(1, "test-worker", {{"proxy.user", "nobody"}}));
  status = runProxyToExit({"-t", "-c", known.configPath()}, known.logPath());
  INFO(known.logText());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace stickyproxy::integration
