#include "proxy/supervisor/worker_process.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/proxy/supervisor/test_loop.h"

namespace stickyproxy {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test::TempDir;
using test::TestLoop;

struct Exit {
  int64_t status;
  int signal;
  steady_clock::time_point at;
};

// Everything a WorkerProcess reported, in order.
struct Events {
  std::vector<int> pids;
  std::vector<steady_clock::time_point> spawned_at;
  std::vector<Exit> exits;
  std::vector<int> spawn_errors;
  std::vector<steady_clock::time_point> spawn_errors_at;

  WorkerProcess::Callbacks callbacks() {
    WorkerProcess::Callbacks callbacks;
    callbacks.on_spawned = [this](int pid) {
      pids.push_back(pid);
      spawned_at.push_back(steady_clock::now());
    };
    callbacks.on_exited = [this](int64_t status, int signal) {
      exits.push_back({status, signal, steady_clock::now()});
    };
    callbacks.on_spawn_failed = [this](int error) {
      spawn_errors.push_back(error);
      spawn_errors_at.push_back(steady_clock::now());
    };
    return callbacks;
  }
};

WorkerConfig shellWorker(const std::string& name, const std::string& script) {
  WorkerConfig config;
  config.name = name;
  config.address.kind = Address::Kind::kTcp;
  config.address.host = "127.0.0.1";
  config.address.port = 18081;
  config.command = "/bin/sh";
  config.args = {"-c", script};
  return config;
}

SupervisorConfig fastSupervisor() {
  SupervisorConfig supervisor;
  supervisor.restart_backoff_initial = milliseconds(20);
  supervisor.restart_backoff_max = milliseconds(160);
  supervisor.stop_grace = milliseconds(5000);
  supervisor.stable_after = milliseconds(10000);
  return supervisor;
}

double ms(steady_clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

// Upper bounds on waits only guard against a hang: a busy machine may add any latency.
constexpr double kHangGuardMs = 5000;

// True when nothing can call back any more: no respawn timer armed, no process running (nothing
// keeps the loop alive). What "nothing more happens" means, read off the loop instead of waited
// for. Call between runs of the loop.
bool nothingPending(TestLoop& loop) { return uv_loop_alive(loop.get()) == 0; }

// Stops `worker` and runs the loop until its stop completed.
void stopAndWait(TestLoop& loop, WorkerProcess& worker) {
  bool stopped = false;
  worker.stop([&] { stopped = true; });
  REQUIRE(loop.runUntil([&] { return stopped; }, milliseconds(10000)));
  REQUIRE_FALSE(worker.running());
}

TEST_CASE("expandedArgs replaces every placeholder in the command and args", "[supervisor]") {
  WorkerConfig config = shellWorker("w7", "");
  config.command = "/opt/{name}/bin/app";
  config.args = {"--listen={address}", "--host={host}", "--port={port}", "--path={path}",
                 "--state={state_dir}/{name}.db", "{unknown}", "{", "{name", "}{name}{"};

  CHECK(WorkerProcess::expandedArgs(config, "/var/lib/sp") ==
        std::vector<std::string>{"/opt/w7/bin/app", "--listen=127.0.0.1:18081",
                                 "--host=127.0.0.1", "--port=18081", "--path=",
                                 "--state=/var/lib/sp/w7.db", "{unknown}", "{", "{name",
                                 "}w7{"});

  config.address = Address{};
  config.address.kind = Address::Kind::kUnix;
  config.address.path = "/run/sp/w7.sock";
  config.command = "app";
  config.args = {"{address}", "{host}|{port}|{path}"};
  CHECK(WorkerProcess::expandedArgs(config, "/s") ==
        std::vector<std::string>{"app", "unix:/run/sp/w7.sock", "||/run/sp/w7.sock"});
}

TEST_CASE("expanded values are not expanded a second time", "[supervisor]") {
  WorkerConfig config = shellWorker("w1", "");
  config.args = {"{state_dir}"};
  CHECK(WorkerProcess::expandedArgs(config, "/tmp/{name}") ==
        std::vector<std::string>{"/bin/sh", "/tmp/{name}"});
}

TEST_CASE("expandedEnv inherits the environment, config env wins, identity is always set",
          "[supervisor]") {
  REQUIRE(setenv("STICKYPROXY_TEST_INHERITED", "kept", 1) == 0);
  REQUIRE(setenv("STICKYPROXY_TEST_OVERRIDDEN", "old", 1) == 0);
  WorkerConfig config = shellWorker("w3", "");
  config.env = {{"STICKYPROXY_TEST_OVERRIDDEN", "new-{port}"},
                {"STICKYPROXY_TEST_ADDED", "{name}@{state_dir}"},
                {"STICKYPROXY_WORKER_NAME", "spoofed"}};

  std::vector<std::string> env = WorkerProcess::expandedEnv(config, "/state");
  unsetenv("STICKYPROXY_TEST_INHERITED");
  unsetenv("STICKYPROXY_TEST_OVERRIDDEN");

  auto entries = [&](const std::string& key) {
    std::vector<std::string> found;
    for (const std::string& entry : env) {
      if (entry.compare(0, key.size() + 1, key + "=") == 0) found.push_back(entry);
    }
    return found;
  };
  using Entries = std::vector<std::string>;
  CHECK(entries("STICKYPROXY_TEST_INHERITED") == Entries{"STICKYPROXY_TEST_INHERITED=kept"});
  CHECK(entries("STICKYPROXY_TEST_OVERRIDDEN") ==
        Entries{"STICKYPROXY_TEST_OVERRIDDEN=new-18081"});
  CHECK(entries("STICKYPROXY_TEST_ADDED") == Entries{"STICKYPROXY_TEST_ADDED=w3@/state"});
  CHECK(entries("STICKYPROXY_WORKER_NAME") == Entries{"STICKYPROXY_WORKER_NAME=w3"});
  CHECK(entries("STICKYPROXY_WORKER_ADDRESS") ==
        Entries{"STICKYPROXY_WORKER_ADDRESS=127.0.0.1:18081"});
  if (getenv("PATH") != nullptr) CHECK(entries("PATH").size() == 1);
}

TEST_CASE("backoffDelay doubles from initial up to max and jitter scales it", "[supervisor]") {
  SupervisorConfig supervisor;
  supervisor.restart_backoff_initial = milliseconds(500);
  supervisor.restart_backoff_max = milliseconds(30000);

  CHECK(WorkerProcess::backoffDelay(supervisor, 1, 1.0) == milliseconds(500));
  CHECK(WorkerProcess::backoffDelay(supervisor, 2, 1.0) == milliseconds(1000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 3, 1.0) == milliseconds(2000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 6, 1.0) == milliseconds(16000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 7, 1.0) == milliseconds(30000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 1000, 1.0) == milliseconds(30000));
  CHECK(WorkerProcess::backoffDelay(supervisor, UINT32_MAX, 1.0) == milliseconds(30000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 1, 0.5) == milliseconds(250));
  CHECK(WorkerProcess::backoffDelay(supervisor, 1000, 0.5) == milliseconds(15000));
  CHECK(WorkerProcess::backoffDelay(supervisor, 3, 0.75) == milliseconds(1500));

  supervisor.restart_backoff_initial = milliseconds(0);
  CHECK(WorkerProcess::backoffDelay(supervisor, UINT32_MAX, 1.0) == milliseconds(0));
}

TEST_CASE("a worker that exits at once is respawned with growing delays and crash-loops",
          "[supervisor]") {
  TestLoop loop;
  Events events;
  const SupervisorConfig supervisor = fastSupervisor();
  WorkerProcess* observed = nullptr;
  bool stopped = false;
  auto callbacks = events.callbacks();
  // Stopping from on_spawned makes the sixth exit one that was asked for, however fast it is.
  callbacks.on_spawned = [&, inner = callbacks.on_spawned](int pid) {
    inner(pid);
    if (events.pids.size() == 6) observed->stop([&] { stopped = true; });
  };
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w2", "exit 3"), "/tmp",
                                                supervisor, callbacks);
  observed = worker.get();
  CHECK(events.pids.empty());  // nothing before start()

  worker->start();
  REQUIRE(loop.runUntil([&] { return stopped; }, milliseconds(10000)));

  REQUIRE(events.pids.size() == 6);
  REQUIRE(events.exits.size() == 6);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(events.exits[i].status == 3);
    CHECK(events.exits[i].signal == 0);
    // The wait after exit number i+1 is the jittered backoff for i+1 failures: at least half
    // of min(max, initial * 2^i), so it grows with each exit.
    const double full = ms(WorkerProcess::backoffDelay(supervisor, static_cast<uint32_t>(i + 1), 1.0));
    const double waited = ms(events.spawned_at[i + 1] - events.exits[i].at);
    CHECK(waited >= full / 2 - 1);
    CHECK(waited < full + kHangGuardMs);
  }
  // The sixth process was stopped on purpose: not counted.
  CHECK(worker->restarts() == 5);
  CHECK(worker->consecutiveFailures() == 5);
  CHECK(events.spawn_errors.empty());

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("a worker that stayed up stable_after restarts after the initial backoff",
          "[supervisor]") {
  TestLoop loop;
  Events events;
  SupervisorConfig supervisor = fastSupervisor();
  supervisor.restart_backoff_initial = milliseconds(30);
  supervisor.stable_after = milliseconds(100);
  std::vector<uint32_t> failures_seen;
  auto callbacks = events.callbacks();
  WorkerProcess* observed = nullptr;
  callbacks.on_exited = [&, inner = callbacks.on_exited](int64_t status, int signal) {
    inner(status, signal);
    failures_seen.push_back(observed->consecutiveFailures());
  };
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w4", "exec sleep 0.2"),
                                                "/tmp", supervisor, callbacks);
  observed = worker.get();

  worker->start();
  REQUIRE(loop.runUntil([&] { return events.exits.size() >= 3; }, milliseconds(10000)));
  stopAndWait(loop, *worker);

  CHECK(failures_seen[0] == 1);
  CHECK(failures_seen[1] == 1);
  CHECK(failures_seen[2] == 1);
  // Each respawn waited at least the jittered initial backoff (15 to 30 ms); that the backoff
  // was never a grown one shows in failures_seen above.
  for (size_t i = 0; i < 2; ++i) {
    const double waited = ms(events.spawned_at[i + 1] - events.exits[i].at);
    CHECK(waited >= 15 - 1);
    CHECK(waited < 30 + kHangGuardMs);
  }

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("stop() of a worker that exits on SIGTERM completes before the grace period",
          "[supervisor]") {
  TestLoop loop;
  TempDir dir;
  Events events;
  SupervisorConfig supervisor = fastSupervisor();
  supervisor.stop_grace = milliseconds(30'000);  // longer than the wait below: no SIGKILL in time
  WorkerConfig config =
      shellWorker("w5", "trap 'exit 0' TERM; : > \"$READY\"; while :; do sleep 0.02; done");
  config.env = {{"READY", "{state_dir}/ready"}};
  auto worker = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), supervisor,
                                                events.callbacks());

  worker->start();
  REQUIRE(worker->running());
  REQUIRE(worker->pid() == events.pids.at(0));
  REQUIRE(loop.runUntil([&] { return test::fileExists(dir.file("ready")); }, milliseconds(10000)));

  // Done within 10 s of a 30 s grace, and the process exited on its own (status 0, no signal).
  int done_calls = 0;
  worker->stop([&] { ++done_calls; });
  REQUIRE(loop.runUntil([&] { return done_calls > 0; }, milliseconds(10000)));
  REQUIRE(events.exits.size() == 1);
  CHECK(events.exits[0].status == 0);
  CHECK(events.exits[0].signal == 0);
  CHECK(worker->pid() == 0);

  // No respawn follows a stop (none is scheduled), and done ran exactly once.
  CHECK(nothingPending(loop));
  CHECK(events.pids.size() == 1);
  CHECK(done_calls == 1);
  CHECK(worker->restarts() == 0);

  // A second stop of a stopped worker completes at once.
  bool again = false;
  worker->stop([&] { again = true; });
  CHECK(again);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("stop() SIGKILLs a worker that ignores SIGTERM once stop_grace has passed",
          "[supervisor]") {
  TestLoop loop;
  TempDir dir;
  Events events;
  SupervisorConfig supervisor = fastSupervisor();
  supervisor.stop_grace = milliseconds(200);
  WorkerConfig config = shellWorker("w6", "trap '' TERM; : > \"$READY\"; exec sleep 30");
  config.env = {{"READY", "{state_dir}/ready"}};
  auto worker = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), supervisor,
                                                events.callbacks());

  worker->start();
  REQUIRE(loop.runUntil([&] { return test::fileExists(dir.file("ready")); }, milliseconds(10000)));

  bool stopped = false;
  const auto stop_at = steady_clock::now();
  worker->stop([&] { stopped = true; });
  REQUIRE(loop.runUntil([&] { return stopped; }, milliseconds(10000)));
  const double took = ms(steady_clock::now() - stop_at);
  CHECK(took >= 190);  // not before stop_grace (200 ms, less the loop clock's rounding)
  CHECK(took < 200 + kHangGuardMs);
  REQUIRE(events.exits.size() == 1);
  CHECK(events.exits[0].signal == SIGKILL);
  CHECK(events.pids.size() == 1);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("the worker process gets its expanded args and environment", "[supervisor]") {
  TestLoop loop;
  TempDir dir;
  Events events;
  WorkerConfig config = shellWorker("w7", "");
  // No '/': found through PATH.
  config.command = "sh";
  config.args = {"-c",
                 "printf '%s\\n' \"$STICKYPROXY_WORKER_NAME\" \"$STICKYPROXY_WORKER_ADDRESS\" "
                 "\"$GREETING\" \"$0\" \"$@\" > \"$OUT.tmp\" && mv \"$OUT.tmp\" \"$OUT\"",
                 "{name}", "--port={port}", "--host={host}", "{state_dir}"};
  config.env = {{"OUT", "{state_dir}/out.txt"}, {"GREETING", "hello {name}"}};
  WorkerProcess* observed = nullptr;
  auto callbacks = events.callbacks();
  callbacks.on_exited = [&, inner = callbacks.on_exited](int64_t status, int signal) {
    inner(status, signal);
    observed->stop(nullptr);
  };
  auto worker = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), fastSupervisor(),
                                                callbacks);
  observed = worker.get();

  worker->start();
  REQUIRE(loop.runUntil([&] { return !events.exits.empty(); }, milliseconds(10000)));
  CHECK(events.exits[0].status == 0);
  CHECK(test::readFile(dir.file("out.txt")) ==
        "w7\n127.0.0.1:18081\nhello w7\nw7\n--port=18081\n--host=127.0.0.1\n" + dir.path() +
            "\n");
  CHECK_FALSE(worker->running());
  CHECK(events.pids.size() == 1);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("updateConfig takes effect at the next spawn", "[supervisor]") {
  TestLoop loop;
  TempDir dir;
  Events events;
  WorkerConfig config = shellWorker("w8", "echo \"$VERSION\" >> \"$OUT\"");
  config.env = {{"OUT", "{state_dir}/out.txt"}, {"VERSION", "v1"}};
  const SupervisorConfig supervisor = fastSupervisor();
  WorkerProcess* observed = nullptr;
  auto callbacks = events.callbacks();
  callbacks.on_exited = [&, inner = callbacks.on_exited](int64_t status, int signal) {
    inner(status, signal);
    if (events.exits.size() == 1) {
      WorkerConfig next = config;
      next.env[1].second = "v2";
      observed->updateConfig(next, supervisor);
    } else {
      observed->stop(nullptr);
    }
  };
  auto worker =
      std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), supervisor, callbacks);
  observed = worker.get();

  worker->start();
  REQUIRE(loop.runUntil([&] { return events.exits.size() >= 2; }, milliseconds(10000)));
  CHECK(test::readFile(dir.file("out.txt")) == "v1\nv2\n");
  CHECK(events.pids.size() == 2);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("a missing command is retried with backoff, not in a tight loop", "[supervisor]") {
  TestLoop loop;
  Events events;
  WorkerConfig config = shellWorker("w9", "");
  config.command = "/nonexistent/stickyproxy-test-worker";
  config.args = {};
  SupervisorConfig supervisor = fastSupervisor();
  supervisor.restart_backoff_initial = milliseconds(50);
  supervisor.restart_backoff_max = milliseconds(200);
  auto worker = std::make_unique<WorkerProcess>(loop.get(), config, "/tmp", supervisor,
                                                events.callbacks());

  worker->start();
  CHECK(events.spawn_errors.size() == 1);  // the first attempt is immediate
  CHECK_FALSE(worker->running());
  REQUIRE(loop.runUntil([&] { return events.spawn_errors.size() >= 6; }, milliseconds(10000)));

  // Each retry waited its jittered backoff, at least half of 50, 100, 200, 200, 200 ms.
  const size_t attempts = events.spawn_errors.size();
  for (size_t i = 0; i + 1 < attempts; ++i) {
    const double full = ms(WorkerProcess::backoffDelay(supervisor, static_cast<uint32_t>(i + 1), 1.0));
    CHECK(ms(events.spawn_errors_at[i + 1] - events.spawn_errors_at[i]) >= full / 2 - 1);
  }
  CHECK(std::all_of(events.spawn_errors.begin(), events.spawn_errors.end(),
                    [](int error) { return error == UV_ENOENT; }));
  CHECK(events.pids.empty());
  CHECK(events.exits.empty());
  CHECK(worker->restarts() == attempts - 1);
  CHECK(worker->consecutiveFailures() == attempts);

  // stop() cancels the pending retry and, with nothing running, completes at once.
  bool stopped = false;
  worker->stop([&] { stopped = true; });
  CHECK(stopped);
  CHECK(nothingPending(loop));
  CHECK(events.spawn_errors.size() == attempts);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("a worker killed with SIGKILL is reported at once and respawned", "[supervisor]") {
  TestLoop loop;
  Events events;
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w10", "exec sleep 30"),
                                                "/tmp", fastSupervisor(), events.callbacks());

  worker->start();
  REQUIRE(events.pids.size() == 1);
  const int first = events.pids[0];
  const auto killed_at = steady_clock::now();
  REQUIRE(kill(first, SIGKILL) == 0);
  REQUIRE(loop.runUntil([&] { return events.pids.size() >= 2; }, milliseconds(10000)));

  REQUIRE(events.exits.size() == 1);
  CHECK(events.exits[0].signal == SIGKILL);
  CHECK(ms(events.exits[0].at - killed_at) < kHangGuardMs);  // from libuv's exit callback, not a poll
  CHECK(events.pids[1] != first);
  CHECK(worker->pid() == events.pids[1]);
  CHECK(worker->restarts() == 1);
  CHECK(worker->startedAt() >= events.exits[0].at);

  stopAndWait(loop, *worker);
  REQUIRE(events.exits.size() == 2);
  CHECK(events.exits[1].signal == SIGTERM);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("restart() replaces the process at once without counting a restart",
          "[supervisor]") {
  TestLoop loop;
  Events events;
  SupervisorConfig supervisor = fastSupervisor();
  supervisor.restart_backoff_initial = milliseconds(30000);  // a backoff would time the test out
  supervisor.restart_backoff_max = milliseconds(30000);
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w11", "exec sleep 30"),
                                                "/tmp", supervisor, events.callbacks());

  worker->start();
  worker->restart();
  REQUIRE(loop.runUntil([&] { return events.pids.size() >= 2; }, milliseconds(5000)));
  REQUIRE(events.exits.size() == 1);
  CHECK(events.exits[0].signal == SIGTERM);
  CHECK(worker->restarts() == 0);
  CHECK(worker->consecutiveFailures() == 0);
  CHECK(worker->running());

  stopAndWait(loop, *worker);
  CHECK(events.pids.size() == 2);

  worker.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("destroying a running worker kills and reaps its process", "[supervisor]") {
  TestLoop loop;
  Events events;
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w12", "exec sleep 30"),
                                                "/tmp", fastSupervisor(), events.callbacks());
  worker->start();
  REQUIRE(events.pids.size() == 1);
  const int pid = events.pids[0];

  worker.reset();
  REQUIRE(loop.close() == 0);
  // Reaped by the loop: the pid no longer exists, not even as a zombie.
  errno = 0;
  CHECK(kill(pid, 0) == -1);
  CHECK(errno == ESRCH);
  CHECK(events.exits.empty());  // nobody is told after destruction
}

TEST_CASE("a worker may be destroyed from inside its own exit callback", "[supervisor]") {
  TestLoop loop;
  Events events;
  std::unique_ptr<WorkerProcess> worker;
  auto callbacks = events.callbacks();
  callbacks.on_exited = [&, inner = callbacks.on_exited](int64_t status, int signal) {
    inner(status, signal);
    worker.reset();
  };
  worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w13", "exit 1"), "/tmp",
                                           fastSupervisor(), callbacks);
  worker->start();
  REQUIRE(loop.runUntil([&] { return worker == nullptr; }, milliseconds(5000)));
  // Nothing is left to call back: the loop ends with exactly the one spawn and exit.
  REQUIRE(loop.close() == 0);
  CHECK(events.exits.size() == 1);
  CHECK(events.pids.size() == 1);
}

// The Uid: or Gid: line of /proc/<pid>/status: "real effective saved filesystem".
std::string procIds(int pid, const std::string& field) {
  std::string status = test::readFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("\n" + field + ":\t");
  if (at == std::string::npos) return "";
  size_t start = at + field.size() + 3;
  return status.substr(start, status.find('\n', start) - start);
}

TEST_CASE("a worker with setRunAs is spawned as that account while the supervisor is root", "[supervisor]") {
  if (::geteuid() != 0) {
    WARN("not root: spawning as another account cannot be tested");
    return;
  }
  TestLoop loop;
  Events events;
  auto worker = std::make_unique<WorkerProcess>(loop.get(), shellWorker("w1", "exec sleep 30"), "/tmp",
                                                fastSupervisor(), events.callbacks());
  worker->setRunAs(WorkerProcess::RunAs{65534, 65534});
  worker->start();
  REQUIRE(events.pids.size() == 1);
  // The ids change in the child between fork and exec: wait until sh has become sleep.
  REQUIRE(loop.runUntil([&] { return test::readFile("/proc/" + std::to_string(events.pids[0]) + "/comm") == "sleep\n"; },
                        milliseconds(10000)));
  CHECK(procIds(events.pids[0], "Uid") == "65534\t65534\t65534\t65534");
  CHECK(procIds(events.pids[0], "Gid") == "65534\t65534\t65534\t65534");
  CHECK(procIds(events.pids[0], "Groups").find_first_not_of(" ") == std::string::npos);
  stopAndWait(loop, *worker);
  worker.reset();
  REQUIRE(loop.close() == 0);
}

}  // namespace
}  // namespace stickyproxy

namespace stickyproxy {
namespace {

// Reaps `pid`, a child of the test process that no libuv handle watches any more.
void reapChild(int pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

TEST_CASE("a released worker keeps running, and another supervisor adopts, restarts and stops it",
          "[supervisor][upgrade]") {
  TestLoop loop;
  TempDir dir;
  Events first_events;
  Events adopter_events;
  SupervisorConfig supervisor = fastSupervisor();
  WorkerConfig config = shellWorker("w7", ": > \"$READY\"; exec sleep 30");
  config.env = {{"READY", "{state_dir}/ready"}};
  auto first = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), supervisor, first_events.callbacks());
  first->start();
  REQUIRE(loop.runUntil([&] { return test::fileExists(dir.file("ready")); }, milliseconds(10000)));
  const int pid = first->pid();
  REQUIRE(pid > 0);

  // Released: nobody signals it, nothing is reported, nothing respawns.
  first->release();
  CHECK_FALSE(first->running());
  first.reset();
  REQUIRE(::kill(pid, 0) == 0);
  CHECK(first_events.exits.empty());

  auto adopter = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), supervisor,
                                                 adopter_events.callbacks());
  REQUIRE(adopter->adopt(pid));
  CHECK(adopter->running());
  CHECK(adopter->adopted());
  CHECK(adopter->pid() == pid);
  REQUIRE(adopter_events.pids == std::vector<int>{pid});
  adopter->start();  // a no-op: it runs
  CHECK(adopter_events.pids.size() == 1);

  // Its death is noticed at once through the pidfd (no status: not the adopter's child), and
  // the worker is spawned again, this time as a child.
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(loop.runUntil([&] { return adopter_events.pids.size() == 2; }, milliseconds(10000)));
  reapChild(pid);
  REQUIRE(adopter_events.exits.size() == 1);
  CHECK(adopter_events.exits[0].status < 0);
  CHECK(adopter_events.exits[0].signal == 0);
  CHECK(describeExit(adopter_events.exits[0].status, 0).find("unknown") != std::string::npos);
  CHECK_FALSE(adopter->adopted());
  CHECK(adopter->pid() != pid);

  stopAndWait(loop, *adopter);
  adopter.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("stop() of an adopted worker signals it through its pidfd and sees it exit", "[supervisor][upgrade]") {
  TestLoop loop;
  TempDir dir;
  Events events;
  WorkerConfig config = shellWorker("w8", "exec sleep 30");
  // Not spawned by any WorkerProcess: a process that only the pid names. posix_spawn returns
  // once it runs sleep (a forked copy of this test would take the signal as a test failure).
  pid_t pid = 0;
  char sleep_name[] = "sleep";
  char seconds[] = "30";
  char* argv[] = {sleep_name, seconds, nullptr};
  REQUIRE(::posix_spawn(&pid, "/bin/sleep", nullptr, nullptr, argv, environ) == 0);
  auto worker = std::make_unique<WorkerProcess>(loop.get(), config, dir.path(), fastSupervisor(), events.callbacks());
  REQUIRE(worker->adopt(pid));
  CHECK_FALSE(worker->adopt(pid));  // one process at a time

  bool stopped = false;
  worker->stop([&] { stopped = true; });
  REQUIRE(loop.runUntil([&] { return stopped; }, milliseconds(10000)));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(events.pids.size() == 1);  // never respawned after a stop
  CHECK_FALSE(worker->running());

  // A pid that is gone cannot be adopted.
  CHECK_FALSE(worker->adopt(pid));
  worker.reset();
  REQUIRE(loop.close() == 0);
}

}  // namespace
}  // namespace stickyproxy
