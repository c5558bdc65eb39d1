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

TEST_CASE("a timer re-armed for later fires then, not at the first time; re-armed earlier, at the earlier", "[net]") {
  testing::TestLoop loop;
  uint64_t started = 0;
  uint64_t fired_at = 0;
  int fired = 0;
  {
    Timer timer(loop.get());
    uv_update_time(loop.get());
    started = uv_now(loop.get());
    timer.start(std::chrono::milliseconds(20), [&] { ++fired; });
    timer.start(std::chrono::milliseconds(80), [&] {
      ++fired;
      fired_at = uv_now(loop.get());
    });
    CHECK(timer.dueIn() > std::chrono::milliseconds(60));
    REQUIRE(loop.runUntil([&] { return fired > 0; }));
    CHECK(fired == 1);
    CHECK(fired_at - started >= 80);
    CHECK_FALSE(timer.armed());

    uv_update_time(loop.get());
    started = uv_now(loop.get());
    timer.start(std::chrono::milliseconds(5000), [&] { fired = -100; });
    timer.start(std::chrono::milliseconds(10), [&] {
      ++fired;
      fired_at = uv_now(loop.get());
    });
    REQUIRE(loop.runUntil([&] { return fired == 2; }));
    CHECK(fired_at - started < 1000);
  }
  CHECK(fired == 2);
  CHECK(loop.close() == 0);
}

TEST_CASE("a stopped timer keeps no loop running, and can be armed again", "[net]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  int fired = 0;
  {
    Timer timer(&loop);
    timer.start(std::chrono::seconds(30), [&] { ++fired; });
    timer.stop();
    auto before = std::chrono::steady_clock::now();
    uv_run(&loop, UV_RUN_DEFAULT);  // returns at once: nothing keeps the loop alive
    CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));
    timer.start(std::chrono::milliseconds(5), [&] { ++fired; });
    uv_run(&loop, UV_RUN_DEFAULT);  // runs until the re-armed timer fired
    CHECK(fired == 1);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the handle's close callback
  CHECK(uv_loop_close(&loop) == 0);
}
