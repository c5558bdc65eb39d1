// The admin socket end to end: permissions, commands and their errors, session-aware drain,
// ready, evict with adoption, restart under traffic, `stickyproxy ctl`, and admin drains that
// survive a reload and a proxy restart.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

// The first of `keys` (fresh, never routed) whose session lands on `worker`, routing as needed.
std::vector<std::string> keysOn(HttpClient& client, const std::string& worker, size_t count, uint64_t seed) {
  std::vector<std::string> found;
  for (const auto& [key, on] : workerOfEach(client, seededSessionKeys(80, seed))) {
    if (on == worker && found.size() < count) found.push_back(key);
  }
  return found;
}

struct CtlResult {
  int exit_code = -1;
  std::string output;
};

CtlResult runCtl(const ProxyUnderTest& proxy, std::vector<std::string> words) {
  std::vector<std::string> argv{binaryPath("stickyproxy"), "ctl", "-c", proxy.configPath()};
  argv.insert(argv.end(), words.begin(), words.end());
  std::string log = proxy.dir().file("ctl-" + std::to_string(::getpid()) + ".log");
  ::unlink(log.c_str());
  ChildProcess ctl(argv, log);
  std::optional<int> status = ctl.waitExit(60s);
  if (!status) throw HarnessError("stickyproxy ctl did not exit");
  CtlResult result;
  result.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
  result.output = readFile(log);
  return result;
}

std::string drainConfig() {
  return ProxyUnderTest::standardConfig(4, "test-worker", {{"routing.drain_idle", "1s"}});
}

}  // namespace

TEST_CASE("admin_group hands the socket to that group with mode 0660", "[integration][admin]") {
  // This process's own group: it exists everywhere the test runs.
  struct group* own = ::getgrgid(::getgid());
  REQUIRE(own != nullptr);
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(2, "test-worker", {{"proxy.admin_group", own->gr_name}}));
  proxy.start();
  struct stat info {};
  REQUIRE(::stat(proxy.adminSocketPath().c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0660);
  CHECK(info.st_gid == own->gr_gid);
  AdminClient admin(proxy.adminSocketPath());
  CHECK(admin.command("help").find("drain") != std::string::npos);
}

TEST_CASE("the admin socket is private, answers help, and names bad commands and workers", "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  struct stat info {};
  REQUIRE(::stat(proxy.adminSocketPath().c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
  CHECK((info.st_mode & 0777) == 0600);

  AdminClient admin(proxy.adminSocketPath());
  std::string help = admin.command("help");
  CHECK(help.find("drain WORKER wait") != std::string::npos);
  CHECK(admin.command("frobnicate now").rfind("error: unknown command", 0) == 0);
  CHECK(admin.command("drain w9").rfind("error: unknown worker \"w9\"", 0) == 0);
  CHECK(admin.command("drain").rfind("error:", 0) == 0);
  CHECK(admin.command("drain w2 wait soon").rfind("error:", 0) == 0);
  CHECK(admin.command("ready w1 extra").rfind("error:", 0) == 0);
  std::string json = admin.command("show workers json");
  CHECK(json.rfind("{", 0) == 0);
  CHECK(json.find("\"ok\":true") != std::string::npos);
  CHECK(json.find("\"name\":\"w4\"") != std::string::npos);
  // Each running worker's CPU and memory, read from /proc.
  CHECK(json.find("\"resident_memory_bytes\":null") == std::string::npos);
  CHECK(json.find("\"cpu_seconds\":") != std::string::npos);
  CHECK(admin.command("drain w9 json").find("\"ok\":false") != std::string::npos);
  std::string table = admin.command("show workers");
  for (const char* name : {"w1", "w2", "w3", "w4"}) CHECK(table.find(std::string("\n") + name + " ") != std::string::npos);
  CHECK(table.find("CPU") != std::string::npos);
  CHECK(table.find("MiB") != std::string::npos);
  CHECK(admin.command("show sessions").find("total:") != std::string::npos);

  SECTION("a line over 4 KiB gets an error and the connection closes; the socket still serves others") {
    AdminClient flood(proxy.adminSocketPath());
    flood.sendRaw(std::string(5000, 'x'));
    CHECK(flood.waitForClose(5s));
    CHECK(flood.input().rfind("error: line longer than 4096 bytes", 0) == 0);
    CHECK(admin.command("help").find("drain") != std::string::npos);
  }
  SECTION("more than 16 clients: the 17th is refused with a reason") {
    std::vector<std::unique_ptr<AdminClient>> clients;
    for (int i = 0; i < 15; ++i) clients.push_back(std::make_unique<AdminClient>(proxy.adminSocketPath()));
    for (auto& client : clients) CHECK(client->command("help").find("drain") != std::string::npos);
    AdminClient extra(proxy.adminSocketPath());
    CHECK(extra.waitForClose(5s));
    CHECK(extra.input().find("too many admin connections") != std::string::npos);
    clients.clear();
    CHECK(waitUntil([&] {
      try {
        AdminClient again(proxy.adminSocketPath());
        return again.command("help", 2s).find("drain") != std::string::npos;
      } catch (const HarnessError&) {
        return false;
      }
    }, 5s));
  }
  proxy.stop();
  CHECK(::access(proxy.adminSocketPath().c_str(), F_OK) != 0);  // removed on shutdown
}

TEST_CASE("admin clients that go quiet or leave their answers unread are cut off while others are served",
          "[integration][admin]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(4, "test-worker", {{"timeouts.admin_idle", "1s"}}));
  proxy.start();
  INFO("proxy log:\n" << fileTail(proxy.logPath()));

  SECTION("a client that sends no command for timeouts.admin_idle is told so and disconnected") {
    AdminClient quiet(proxy.adminSocketPath());
    CHECK(quiet.command("help").find("drain") != std::string::npos);
    CHECK(quiet.waitForClose(10s));
    CHECK(quiet.input() == "error: no command for 1s; closing\n\n");
  }
  SECTION("a client that never reads is disconnected once its unread answers pass 256 KiB") {
    constexpr int kCommands = 4000;  // about 2.5 MB of answers
    AdminClient hoarder(proxy.adminSocketPath());
    hoarder.setReceiveBuffer(4096);
    std::string lines;
    for (int i = 0; i < kCommands; ++i) lines += "show workers\n";
    try {
      hoarder.sendRaw(lines);
    } catch (const HarnessError&) {
      // The server may close before it has read every line.
    }
    CHECK(waitUntil([&] { return readFile(proxy.logPath()).find("does not read its answers") != std::string::npos; },
                    20s));
    AdminClient other(proxy.adminSocketPath());
    CHECK(other.command("show workers").find("\nw4 ") != std::string::npos);
    // The hoarder finds the whole answers that reached its socket, then the end.
    CHECK(hoarder.waitForClose(10s));
    size_t answers = 0;
    for (size_t at = hoarder.input().find("\n\n"); at != std::string::npos; at = hoarder.input().find("\n\n", at + 2)) {
      ++answers;
    }
    CHECK(answers > 0);
    CHECK(answers < kCommands);
  }
}

TEST_CASE("a draining worker gets no new sessions while its existing ones still reach it, drains, and returns",
          "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  HttpClient client = proxy.client(10s);
  std::vector<std::string> on_w2 = keysOn(client, "w2", 3, 0xd7a1);
  REQUIRE(!on_w2.empty());

  AdminClient admin(proxy.adminSocketPath());
  CHECK(admin.command("drain w2").rfind("w2 is draining", 0) == 0);
  CHECK(proxy.workerStatus("w2").state == "draining");

  // Fresh clients (no cookie) and never-seen keys never land on w2.
  for (int i = 0; i < 40; ++i) {
    HttpClient fresh = proxy.client(10s);
    Response response = fresh.get("/whoami");
    REQUIRE(response.status == 200);
    CHECK(response.body != "w2");
  }
  for (const auto& [key, worker] : workerOfEach(client, seededSessionKeys(60, 0xfe55))) CHECK(worker != "w2");
  // Its existing sessions still do.
  for (const std::string& key : on_w2) {
    Response response = asSession(client, key);
    CHECK(response.body == "w2");
    CHECK(response.headerOr("X-Seen-Previous-Worker").empty());
  }

  // Just used: a wait of 0 s reports a timeout, and says so.
  std::string timed_out = admin.command("drain w2 wait 0");
  CHECK(timed_out.rfind("timeout:", 0) == 0);
  // Once its sessions idle past routing.drain_idle (1 s) it is drained.
  auto asked = std::chrono::steady_clock::now();
  CHECK(admin.command("drain w2 wait 10", 20s) == "w2 drained");
  CHECK(since(asked) < 5s);
  CHECK(proxy.workerStatus("w2").state == "drained");
  CHECK(asSession(client, on_w2.front()).body == "w2");  // still its session's worker

  CHECK(admin.command("ready w2").rfind("w2 is ready", 0) == 0);
  std::set<std::string> fresh_workers;
  for (const auto& [key, worker] : workerOfEach(client, seededSessionKeys(60, 0xfe56))) fresh_workers.insert(worker);
  CHECK(fresh_workers.count("w2") == 1);
}

TEST_CASE("evict moves a worker's sessions now, announced so the app adopts them", "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  HttpClient client = proxy.client(10s);
  std::vector<std::string> on_w3 = keysOn(client, "w3", 5, 0xe71c);
  REQUIRE(!on_w3.empty());

  AdminClient admin(proxy.adminSocketPath());
  std::string answer = admin.command("evict w3");
  CHECK(answer.rfind("w3 evicted: ", 0) == 0);
  for (const std::string& key : on_w3) {
    Response moved = asSession(client, key, "/headers");
    REQUIRE(moved.status == 200);
    CHECK(moved.body.find("X-Sticky-Previous-Worker: w3") != std::string::npos);
    Response again = asSession(client, key);
    CHECK(again.body != "w3");
    CHECK(again.headerOr("X-Seen-Previous-Worker").empty());  // announced once
  }
  CHECK(proxy.workerStatus("w3").state != "ready");
  CHECK(admin.command("ready w3").rfind("w3 is ready", 0) == 0);
}

TEST_CASE("restart recycles a worker under traffic without a failed request", "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  std::vector<pid_t> before = proxy.childPids();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  std::vector<std::thread> traffic;
  for (int t = 0; t < 3; ++t) {
    traffic.emplace_back([&, t] {
      HttpClient client = proxy.client(20s);
      std::vector<std::string> keys = seededSessionKeys(20, 0x7e57 + static_cast<uint64_t>(t));
      size_t i = 0;
      while (!stop) {
        try {
          Response response = asSession(client, keys[i++ % keys.size()], "/delay?ms=5");
          if (response.status != 200) ++failures;
        } catch (const HarnessError&) {
          ++failures;
          client.close();
        }
        ++done;
      }
    });
  }
  REQUIRE(waitUntil([&] { return done > 50; }, 10s));
  AdminClient admin(proxy.adminSocketPath());
  std::string answer = admin.command("restart w2 2", 60s);
  int after_restart = done;
  REQUIRE(waitUntil([&] { return done > after_restart + 50; }, 10s));
  stop = true;
  for (std::thread& thread : traffic) thread.join();
  CHECK(answer.rfind("restarted w2", 0) == 0);
  CHECK(failures == 0);
  CHECK(proxy.workerStatus("w2").state == "ready");
  std::vector<pid_t> after = proxy.childPids();
  CHECK(after.size() == before.size());
  INFO(answer);
}

TEST_CASE("stickyproxy ctl prints the answer and exits non-zero when the command failed", "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  CtlResult help = runCtl(proxy, {"help"});
  CHECK(help.exit_code == 0);
  CHECK(help.output.find("drain WORKER") != std::string::npos);
  CtlResult shown = runCtl(proxy, {"show", "workers"});
  CHECK(shown.exit_code == 0);
  CHECK(shown.output.find("STATE") != std::string::npos);
  CHECK(runCtl(proxy, {"frobnicate"}).exit_code == 1);
  CtlResult unknown = runCtl(proxy, {"drain", "w9"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.output.find("unknown worker") != std::string::npos);
  CHECK(runCtl(proxy, {"drain", "w9", "json"}).exit_code == 1);
  CtlResult drained = runCtl(proxy, {"drain", "w1", "wait", "10"});
  CHECK(drained.exit_code == 0);
  CHECK(drained.output.find("w1 drained") != std::string::npos);
  CHECK(runCtl(proxy, {"ready", "w1"}).exit_code == 0);
  proxy.stop();
  CHECK(runCtl(proxy, {"help"}).exit_code == 1);  // nothing listens
}

TEST_CASE("a worker drained by the admin stays drained across a reload and a proxy restart", "[integration][admin]") {
  ProxyUnderTest proxy(drainConfig());
  proxy.start();
  {
    AdminClient admin(proxy.adminSocketPath());
    CHECK(admin.command("drain w4").rfind("w4 is draining", 0) == 0);
  }
  proxy.reload();
  CHECK(waitUntil([&] { return proxy.logText().find("configuration reloaded") != std::string::npos; }, 10s));
  CHECK(proxy.workerStatus("w4").state.rfind("drain", 0) == 0);

  proxy.stop();
  proxy.start();
  CHECK(proxy.waitForWorker("w4", [](const WorkerStatus& w4) { return w4.state.rfind("drain", 0) == 0; }));
  HttpClient client = proxy.client(10s);
  for (const auto& [key, worker] : workerOfEach(client, seededSessionKeys(40, 0x4444))) CHECK(worker != "w4");
  {
    AdminClient admin(proxy.adminSocketPath());
    CHECK(admin.command("ready w4").rfind("w4 is ready", 0) == 0);
  }
  proxy.stop();
  proxy.start();
  CHECK(proxy.waitForWorkerState("w4", "ready"));
}
