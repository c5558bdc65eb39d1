#include "proxy/supervisor/supervisor.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/proxy/supervisor/test_loop.h"

namespace stickyproxy {
namespace {

using std::chrono::milliseconds;
using test::TestLoop;

struct Events {
  std::map<std::string, std::vector<int>> pids;
  std::map<std::string, std::vector<int>> exit_signals;

  Supervisor::Callbacks callbacks() {
    Supervisor::Callbacks callbacks;
    callbacks.on_spawned = [this](const std::string& name, int pid) { pids[name].push_back(pid); };
    callbacks.on_exited = [this](const std::string& name, int64_t, int signal) {
      exit_signals[name].push_back(signal);
    };
    return callbacks;
  }
};

// A worker that runs elsewhere: an address and no command.
WorkerConfig external(const std::string& name, uint16_t port) {
  WorkerConfig config;
  config.name = name;
  config.address.host = "127.0.0.1";
  config.address.port = port;
  return config;
}

// A worker the supervisor starts: /bin/sh running `sleep 30`.
WorkerConfig supervised(const std::string& name, uint16_t port) {
  WorkerConfig config = external(name, port);
  config.command = "/bin/sh";
  config.args = {"-c", "exec sleep 30"};
  return config;
}

Config makeConfig(std::vector<WorkerConfig> workers) {
  Config config;
  config.state_dir = "/tmp";
  config.supervisor.restart_backoff_initial = milliseconds(20);
  config.supervisor.stop_grace = milliseconds(5000);
  config.workers = std::move(workers);
  return config;
}

std::vector<std::string> names(const Supervisor& supervisor) {
  std::vector<std::string> all;
  for (const WorkerProcess* worker : supervisor.workers()) all.push_back(worker->name());
  return all;
}

// A supervisor of `workers` on a loop of its own, and the events it reports. The supervisor
// is declared last, so that it goes before the loop.
struct SupervisorRun {
  explicit SupervisorRun(std::vector<WorkerConfig> workers)
      : supervisor(std::make_unique<Supervisor>(loop.get(), makeConfig(std::move(workers)),
                                                events.callbacks())) {}

  // stopAll() and waits until it is done: it must report done once, with no worker left
  // running, and each of `stopped` must have exited once, on SIGTERM.
  void stopAllExpectingSigterm(const std::vector<std::string>& stopped) {
    int done_calls = 0;
    supervisor->stopAll([&] { ++done_calls; });
    REQUIRE(loop.runUntil([&] { return done_calls > 0; }, milliseconds(10000)));
    CHECK(done_calls == 1);
    for (const WorkerProcess* worker : supervisor->workers()) CHECK_FALSE(worker->running());
    for (const std::string& name : stopped) {
      CHECK(events.exit_signals[name] == std::vector<int>{SIGTERM});
    }
  }

  // Destroys the supervisor; the loop must then close with no handle left open.
  void finish() {
    supervisor.reset();
    REQUIRE(loop.close() == 0);
  }

  TestLoop loop;
  Events events;
  std::unique_ptr<Supervisor> supervisor;
};

TEST_CASE("startAll starts supervised workers only and stopAll waits for all of them",
          "[supervisor]") {
  SupervisorRun run({supervised("w1", 18081), external("external", 18082), supervised("w2", 18083)});
  Supervisor& supervisor = *run.supervisor;

  CHECK(names(supervisor) == std::vector<std::string>{"w1", "w2"});
  CHECK(supervisor.find("external") == nullptr);
  CHECK(run.events.pids.empty());

  supervisor.startAll();
  REQUIRE(run.events.pids["w1"].size() == 1);
  REQUIRE(run.events.pids["w2"].size() == 1);
  CHECK(supervisor.find("w1")->pid() == run.events.pids["w1"][0]);
  CHECK(supervisor.find("w2")->running());

  run.stopAllExpectingSigterm({"w1", "w2"});
  run.finish();
}

TEST_CASE("stopAll with nothing running completes at once", "[supervisor]") {
  SupervisorRun run({supervised("w1", 18081)});
  bool done = false;
  run.supervisor->stopAll([&] { done = true; });
  CHECK(done);
}

TEST_CASE("applyConfig stops removed workers, starts new ones and keeps the rest running",
          "[supervisor]") {
  SupervisorRun run({supervised("w1", 18081), supervised("w2", 18082)});
  Supervisor& supervisor = *run.supervisor;
  Events& events = run.events;
  supervisor.startAll();
  const int w2_pid = supervisor.find("w2")->pid();

  // w1 goes away, w2 changes, w3 is new, and w4 is external so nothing is started for it.
  WorkerConfig w2 = supervised("w2", 18082);
  w2.env = {{"CHANGED", "yes"}};
  supervisor.applyConfig(makeConfig({w2, supervised("w3", 18083), external("w4", 18084)}));

  CHECK(names(supervisor) == std::vector<std::string>{"w2", "w3"});
  CHECK(supervisor.find("w1") == nullptr);
  REQUIRE(events.pids["w3"].size() == 1);
  REQUIRE(run.loop.runUntil([&] { return events.exit_signals["w1"].size() == 1; },
                            milliseconds(10000)));
  CHECK(events.exit_signals["w1"][0] == SIGTERM);
  // The updated worker keeps running its old process until its next spawn.
  CHECK(supervisor.find("w2")->pid() == w2_pid);
  CHECK(events.exit_signals["w2"].empty());
  CHECK(events.pids["w1"].size() == 1);  // the removed worker is not respawned

  run.stopAllExpectingSigterm({"w2", "w3"});
  run.finish();
}

TEST_CASE("stopAll also waits for workers that a reload is still stopping", "[supervisor]") {
  SupervisorRun run({supervised("w1", 18081), supervised("w2", 18082)});
  run.supervisor->startAll();
  run.supervisor->applyConfig(makeConfig({supervised("w2", 18082)}));

  run.stopAllExpectingSigterm({"w1", "w2"});
  run.finish();
}

TEST_CASE("applyConfig before startAll does not start workers", "[supervisor]") {
  SupervisorRun run({supervised("w1", 18081)});
  run.supervisor->applyConfig(makeConfig({supervised("w1", 18081), supervised("w2", 18082)}));
  CHECK(names(*run.supervisor) == std::vector<std::string>{"w1", "w2"});
  CHECK(run.events.pids.empty());
  run.finish();
}

}  // namespace
}  // namespace stickyproxy
