#include "proxy/core/worker_operations.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy {
namespace {

using std::chrono::seconds;
using testing::TempDir;
using testing::TestLoop;

// One external worker "w1", up and ready, and the operations over it (no supervisor).
struct OperationsFixture {
  TestLoop loop;
  TempDir dir;
  Config config = makeConfig(dir.path());
  WorkerMap workers;
  RoutingState state{loop.get(), config};
  size_t move_calls = 0;
  WorkerOperations operations{loop.get(), config, workers, state, [this](const std::string&) {
                                ++move_calls;
                                return size_t{3};
                              }};

  OperationsFixture() {
    workers["w1"] = std::make_shared<Worker>(loop.get(), config.workers[0], config);
    w1().setState(WorkerState::kReady);
    operations.start(nullptr);
  }
  ~OperationsFixture() {
    operations.stop();
    workers.clear();
  }
  Worker& w1() { return *workers["w1"]; }

  static Config makeConfig(const std::string& state_dir) {
    Config config;
    config.state_dir = state_dir;
    WorkerConfig worker;
    worker.name = "w1";
    worker.address.host = "127.0.0.1";
    worker.address.port = 1;
    config.workers.push_back(worker);
    return config;
  }
};

}  // namespace

TEST_CASE("a drained worker with nothing active answers the drain wait, and stays drained on disk",
          "[core][operations]") {
  OperationsFixture f;
  f.operations.drainWorker(f.w1());
  CHECK(f.w1().state() == WorkerState::kDraining);
  CHECK(f.operations.availability("w1") == Availability::kDraining);
  CHECK(f.operations.moveReason("w1") == std::string("drain"));
  std::optional<std::string> outcome;
  f.operations.waitDrained("w1", seconds(5), [&](const std::string& result) { outcome = result; });
  REQUIRE(f.loop.runUntil([&] { return outcome.has_value(); }));
  CHECK(*outcome == "drained");
  CHECK(f.w1().state() == WorkerState::kDrained);
  CHECK(f.state.loadDrainedWorkers() == std::set<std::string>{"w1"});
  // A worker the admin drained comes back up draining.
  CHECK(f.operations.comesUpDraining("w1"));
}

TEST_CASE("a drained worker whose session is active again is not reported drained before the next tick",
          "[core][operations]") {
  OperationsFixture f;
  f.config.routing.drain_idle = std::chrono::milliseconds(1);
  f.operations.drainWorker(f.w1());
  std::optional<std::string> first;
  f.operations.waitDrained("w1", seconds(5), [&](const std::string& result) { first = result; });
  REQUIRE(f.loop.runUntil([&] { return first.has_value(); }));
  REQUIRE(f.w1().state() == WorkerState::kDrained);
  // A session of w1 comes back (the router touches it) and the admin asks at once, between two
  // ticks: the answer is about now, not about the last tick.
  f.config.routing.drain_idle = std::chrono::hours(1);
  f.state.sessions().touch(0x5e55, "w1", std::chrono::system_clock::now());
  std::optional<std::string> second;
  f.operations.waitDrained("w1", seconds(0), [&](const std::string& result) { second = result; });
  REQUIRE(f.loop.runUntil([&] { return second.has_value(); }));
  CHECK(*second == "timeout");
  CHECK(f.w1().state() == WorkerState::kDraining);
}

TEST_CASE("ready ends a drain wait with \"not draining\" and forgets the drain on disk", "[core][operations]") {
  OperationsFixture f;
  f.w1().admission().request(1, [](bool) {});  // a request in flight keeps it draining
  f.operations.drainWorker(f.w1());
  std::optional<std::string> outcome;
  f.operations.waitDrained("w1", seconds(5), [&](const std::string& result) { outcome = result; });
  CHECK_FALSE(outcome.has_value());
  f.operations.readyWorker(f.w1());
  REQUIRE(f.loop.runUntil([&] { return outcome.has_value(); }));
  CHECK(*outcome == "not draining");
  CHECK(f.w1().state() == WorkerState::kReady);
  CHECK(f.state.loadDrainedWorkers().empty());
}

TEST_CASE("an evicted worker's sessions are moved once, and it is evicted until ready", "[core][operations]") {
  OperationsFixture f;
  CHECK(f.operations.evictWorker(f.w1()) == 3);
  CHECK(f.move_calls == 1);
  CHECK(f.operations.availability("w1") == Availability::kEvicted);
  CHECK(f.operations.availability(f.w1()) == Availability::kEvicted);  // the router's form, by the worker
  CHECK(f.operations.moveReason("w1") == std::string("evict"));
  f.operations.readyWorker(f.w1());
  CHECK(f.operations.availability("w1") == Availability::kReady);
  CHECK(f.operations.availability(f.w1()) == Availability::kReady);
  f.w1().setState(WorkerState::kDown);
  CHECK(f.operations.availability(f.w1()) == Availability::kDown);
  CHECK(f.operations.availability("w9") == Availability::kDown);  // not a worker
}

TEST_CASE("a restart without a supervisor is refused at once; stopping ends the waits", "[core][operations]") {
  OperationsFixture f;
  std::optional<std::string> restart_message;
  f.operations.restartWorker("w1", seconds(5), [&](bool ok, const std::string& message) {
    CHECK_FALSE(ok);
    restart_message = message;
  });
  REQUIRE(restart_message.has_value());
  CHECK(*restart_message == "worker w1 is not supervised by this proxy");

  f.w1().admission().request(1, [](bool) {});
  f.operations.drainWorker(f.w1());
  std::optional<std::string> outcome;
  f.operations.waitDrained("w1", seconds(5), [&](const std::string& result) { outcome = result; });
  f.operations.stop();
  REQUIRE(outcome.has_value());
  CHECK(*outcome == "shutting down");
  f.operations.waitDrained("w1", seconds(5), [&](const std::string& result) { outcome = result + " again"; });
  CHECK(*outcome == "shutting down again");
}

}  // namespace stickyproxy
