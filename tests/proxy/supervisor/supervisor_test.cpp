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

WorkerConfig worker(const std::string& name, uint16_t port, const std::string& command) {
  WorkerConfig config;
  config.name = name;
  config.address.host = "127.0.0.1";
  config.address.port = port;
  config.command = command;
  if (!command.empty()) config.args = {"-c", "exec sleep 30"};
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

void stopAllAndWait(TestLoop& loop, Supervisor& supervisor) {
  int done_calls = 0;
  supervisor.stopAll([&] { ++done_calls; });
  REQUIRE(loop.runUntil([&] { return done_calls > 0; }, milliseconds(10000)));
  CHECK(done_calls == 1);
  for (const WorkerProcess* worker : supervisor.workers()) CHECK_FALSE(worker->running());
}

TEST_CASE("startAll starts supervised workers only and stopAll waits for all of them",
          "[supervisor]") {
  TestLoop loop;
  Events events;
  auto supervisor = std::make_unique<Supervisor>(
      loop.get(),
      makeConfig({worker("w1", 18081, "/bin/sh"), worker("external", 18082, ""),
                  worker("w2", 18083, "/bin/sh")}),
      events.callbacks());

  CHECK(names(*supervisor) == std::vector<std::string>{"w1", "w2"});
  CHECK(supervisor->find("external") == nullptr);
  CHECK(events.pids.empty());

  supervisor->startAll();
  REQUIRE(events.pids["w1"].size() == 1);
  REQUIRE(events.pids["w2"].size() == 1);
  CHECK(supervisor->find("w1")->pid() == events.pids["w1"][0]);
  CHECK(supervisor->find("w2")->running());

  stopAllAndWait(loop, *supervisor);
  CHECK(events.exit_signals["w1"] == std::vector<int>{SIGTERM});
  CHECK(events.exit_signals["w2"] == std::vector<int>{SIGTERM});

  supervisor.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("stopAll with nothing running completes at once", "[supervisor]") {
  TestLoop loop;
  Events events;
  Supervisor supervisor(loop.get(), makeConfig({worker("w1", 18081, "/bin/sh")}),
                        events.callbacks());
  bool done = false;
  supervisor.stopAll([&] { done = true; });
  CHECK(done);
}

TEST_CASE("applyConfig stops removed workers, starts new ones and keeps the rest running",
          "[supervisor]") {
  TestLoop loop;
  Events events;
  auto supervisor = std::make_unique<Supervisor>(
      loop.get(), makeConfig({worker("w1", 18081, "/bin/sh"), worker("w2", 18082, "/bin/sh")}),
      events.callbacks());
  supervisor->startAll();
  const int w2_pid = supervisor->find("w2")->pid();

  // w1 goes away, w2 changes, w3 is new, and w4 is external so nothing is started for it.
  WorkerConfig w2 = worker("w2", 18082, "/bin/sh");
  w2.env = {{"CHANGED", "yes"}};
  supervisor->applyConfig(makeConfig({w2, worker("w3", 18083, "/bin/sh"),
                                      worker("w4", 18084, "")}));

  CHECK(names(*supervisor) == std::vector<std::string>{"w2", "w3"});
  CHECK(supervisor->find("w1") == nullptr);
  REQUIRE(events.pids["w3"].size() == 1);
  REQUIRE(loop.runUntil([&] { return events.exit_signals["w1"].size() == 1; },
                        milliseconds(10000)));
  CHECK(events.exit_signals["w1"][0] == SIGTERM);
  // The updated worker keeps running its old process until its next spawn.
  CHECK(supervisor->find("w2")->pid() == w2_pid);
  CHECK(events.exit_signals["w2"].empty());
  CHECK(events.pids["w1"].size() == 1);  // the removed worker is not respawned

  stopAllAndWait(loop, *supervisor);
  CHECK(events.exit_signals["w2"] == std::vector<int>{SIGTERM});
  CHECK(events.exit_signals["w3"] == std::vector<int>{SIGTERM});

  supervisor.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("stopAll also waits for workers that a reload is still stopping", "[supervisor]") {
  TestLoop loop;
  Events events;
  auto supervisor = std::make_unique<Supervisor>(
      loop.get(), makeConfig({worker("w1", 18081, "/bin/sh"), worker("w2", 18082, "/bin/sh")}),
      events.callbacks());
  supervisor->startAll();
  supervisor->applyConfig(makeConfig({worker("w2", 18082, "/bin/sh")}));

  stopAllAndWait(loop, *supervisor);
  CHECK(events.exit_signals["w1"] == std::vector<int>{SIGTERM});
  CHECK(events.exit_signals["w2"] == std::vector<int>{SIGTERM});

  supervisor.reset();
  REQUIRE(loop.close() == 0);
}

TEST_CASE("applyConfig before startAll does not start workers", "[supervisor]") {
  TestLoop loop;
  Events events;
  auto supervisor = std::make_unique<Supervisor>(
      loop.get(), makeConfig({worker("w1", 18081, "/bin/sh")}), events.callbacks());
  supervisor->applyConfig(
      makeConfig({worker("w1", 18081, "/bin/sh"), worker("w2", 18082, "/bin/sh")}));
  CHECK(names(*supervisor) == std::vector<std::string>{"w1", "w2"});
  CHECK(events.pids.empty());

  supervisor.reset();
  REQUIRE(loop.close() == 0);
}

}  // namespace
}  // namespace stickyproxy
