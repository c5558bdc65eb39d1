#include "proxy/core/service_notifier.h"

#include <catch2/catch.hpp>

#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;

namespace {

WorkerSnapshot worker(std::string name, std::string state, uint64_t sessions, uint32_t in_flight) {
  WorkerSnapshot snapshot;
  snapshot.name = std::move(name);
  snapshot.state = std::move(state);
  snapshot.sessions = sessions;
  snapshot.in_flight = in_flight;
  return snapshot;
}

}  // namespace

TEST_CASE("the status line sums sessions and requests and names every worker that is not ready", "[systemd]") {
  ProxySnapshot snapshot;
  snapshot.workers = {worker("w1", "ready", 3, 1), worker("w2", "ready", 4, 0)};
  CHECK(serviceStatusLine(snapshot) == "2 of 2 workers ready, 7 sessions, 1 requests in flight");
  snapshot.workers.push_back(worker("w3", "down", 0, 0));
  snapshot.workers.push_back(worker("w4", "draining", 2, 2));
  CHECK(serviceStatusLine(snapshot) == "2 of 4 workers ready (w3 down, w4 draining), 9 sessions, 3 requests in flight");
  CHECK(serviceStatusLine(ProxySnapshot{}) == "0 of 0 workers ready, 0 sessions, 0 requests in flight");
}

TEST_CASE("without NOTIFY_SOCKET the notifier sends nothing and arms no watchdog", "[systemd]") {
  REQUIRE(::getenv("NOTIFY_SOCKET") == nullptr);
  testing::TestLoop loop;
  {
    ServiceNotifier notifier(loop.get());
    CHECK_FALSE(notifier.enabled());
    notifier.ready("ready");
    notifier.reloading("reloading");
    notifier.status("status");
    notifier.stopping("stopping");
    CHECK(notifier.watchdogInterval().count() == 0);
  }
  CHECK(loop.close() == 0);
}
