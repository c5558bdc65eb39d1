#include "proxy/net/timer.h"

#include <catch2/catch.hpp>

#include "proxy/net/loop_context.h"
#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;

TEST_CASE("a one-shot timer fires exactly once and a stopped one never", "[net]") {
  testing::TestLoop loop;
  int fired = 0;
  int stopped_fired = 0;
  {
    Timer once(loop.get());
    Timer stopped(loop.get());
    once.start(std::chrono::milliseconds(5), [&] { ++fired; });
    stopped.start(std::chrono::milliseconds(5), [&] { ++stopped_fired; });
    stopped.stop();
    Timer later(loop.get());
    bool waited = false;
    later.start(std::chrono::milliseconds(50), [&] { waited = true; });
    REQUIRE(loop.runUntil([&] { return waited; }));
  }
  CHECK(fired == 1);
  CHECK(stopped_fired == 0);
  CHECK(loop.close() == 0);
}

TEST_CASE("a timer destroyed inside its own callback is safe", "[net]") {
  testing::TestLoop loop;
  auto timer = std::make_unique<Timer>(loop.get());
  int fired = 0;
  timer->start(std::chrono::milliseconds(1), [&] {
    ++fired;
    timer.reset();
  });
  REQUIRE(loop.runUntil([&] { return timer == nullptr; }));
  CHECK(fired == 1);
  CHECK(loop.close() == 0);
}

TEST_CASE("a repeating timer fires until stopped", "[net]") {
  testing::TestLoop loop;
  int fired = 0;
  {
    Timer ticker(loop.get());
    ticker.startRepeating(std::chrono::milliseconds(1), [&] {
      if (++fired == 5) ticker.stop();
    });
    Timer after(loop.get());
    bool waited = false;
    after.start(std::chrono::milliseconds(40), [&] { waited = true; });
    REQUIRE(loop.runUntil([&] { return waited; }));
  }
  CHECK(fired == 5);
  CHECK(loop.close() == 0);
}

TEST_CASE("deferred tasks run after the current callback, in order", "[net]") {
  testing::TestLoop loop;
  std::vector<int> order;
  {
    Timer timer(loop.get());
    timer.start(std::chrono::milliseconds(1), [&] {
      LoopContext::of(loop.get()).defer([&] { order.push_back(2); });
      LoopContext::of(loop.get()).defer([&] {
        order.push_back(3);
        LoopContext::of(loop.get()).defer([&] { order.push_back(4); });
      });
      order.push_back(1);
    });
    REQUIRE(loop.runUntil([&] { return order.size() == 4; }));
  }
  CHECK(order == std::vector<int>{1, 2, 3, 4});
  CHECK(loop.close() == 0);
}
