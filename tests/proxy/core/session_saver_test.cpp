#include "proxy/core/session_saver.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::TempDir;
using testing::TestLoop;

// A table with `count` keys moved from w1 to w2.
void moveKeys(SessionTable& table, uint64_t first, uint64_t count) {
  for (uint64_t key = first; key < first + count; ++key) {
    table.move(key, "w1", "w2", std::chrono::system_clock::now());
  }
}

// What the state file written for `table` loads back as: its moved-entry count.
size_t movedInFile(const std::string& path) {
  SessionTable loaded(hours(1), hours(24));
  if (!loaded.load(path, std::chrono::system_clock::now(), nullptr)) return static_cast<size_t>(-1);
  return loaded.movedCount();
}

// True when nothing can call back any more: no write is scheduled (the saver's timer is not
// armed) and none is running (no work request). What "no further write comes" means, read off
// the loop instead of waited for. Call between runs of the loop.
bool nothingPending(TestLoop& loop) { return uv_loop_alive(loop.get()) == 0; }

// A loop, a scratch directory and a table; the state file is `path`.
struct SaverFixture {
  TestLoop loop;
  TempDir dir;
  std::string path = dir.file("moved-keys.json");
  SessionTable table{hours(1), hours(24)};
};

}  // namespace

TEST_CASE("changes reach the state file after the change delay, many changes in one write", "[core][saver]") {
  SaverFixture f;
  auto& [loop, dir, path, table] = f;
  {
    SessionSaver saver(loop.get(), &table, path, {milliseconds(20), hours(1)});
    moveKeys(table, 1, 3);
    for (int i = 0; i < 10; ++i) saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 1; }));
    CHECK(movedInFile(path) == 3);
    // Only the one write: the ten calls came within one delay, and nothing more is scheduled.
    CHECK(nothingPending(loop));
    CHECK(saver.writesCompleted() == 1);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a touch is written after the longer touch delay, unless a change comes first", "[core][saver]") {
  SaverFixture f;
  auto& [loop, dir, path, table] = f;
  {
    const milliseconds touch_delay(300);
    SessionSaver saver(loop.get(), &table, path, {milliseconds(20), touch_delay});
    moveKeys(table, 1, 2);
    uv_update_time(loop.get());  // the saver's timer counts from the loop's clock: make it now
    const auto touched_at = steady_clock::now();
    saver.touched();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 1; }, milliseconds(10'000)));
    // Not before the touch delay (the change delay is far shorter), less the loop clock's
    // millisecond rounding.
    CHECK(steady_clock::now() - touched_at >= touch_delay - milliseconds(2));
    CHECK(movedInFile(path) == 2);
    CHECK(nothingPending(loop));
  }
  {
    SessionSaver saver(loop.get(), &table, path, {milliseconds(20), hours(1)});
    moveKeys(table, 3, 1);
    saver.touched();
    // A change brings the pending write forward: written within the test, not in an hour.
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 1; }, milliseconds(10'000)));
    CHECK(movedInFile(path) == 3);
    CHECK(nothingPending(loop));
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a change during a write is written after it, flush writes the latest table, resume goes on", "[core][saver]") {
  SaverFixture f;
  auto& [loop, dir, path, table] = f;
  {
    SessionSaver saver(loop.get(), &table, path, {milliseconds(0), hours(1)});
    // Large enough that the write is still running when the next change arrives.
    moveKeys(table, 1, 50'000);
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 0 && saver.writing(); }));
    moveKeys(table, 100'000, 10);
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 2; }, milliseconds(20'000)));
    CHECK(movedInFile(path) == 50'010);

    moveKeys(table, 200'000, 5);
    saver.changed();  // scheduled, then overtaken by the flush
    bool flushed = false;
    saver.flush([&] { flushed = true; });
    REQUIRE(loop.runUntil([&] { return flushed; }));
    CHECK(movedInFile(path) == 50'015);
    // After a flush nothing more is written.
    uint64_t writes = saver.writesCompleted();
    moveKeys(table, 300'000, 1);
    saver.changed();
    CHECK(nothingPending(loop));
    CHECK(saver.writesCompleted() == writes);
    CHECK(movedInFile(path) == 50'015);

    // A hand-over that did not happen: saving goes on, the change made meanwhile included.
    saver.resume();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == writes + 1; }, milliseconds(20'000)));
    CHECK(movedInFile(path) == 50'016);
    moveKeys(table, 400'000, 1);
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == writes + 2; }, milliseconds(20'000)));
    CHECK(movedInFile(path) == 50'017);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("flush waits for the write in progress, then writes the latest table", "[core][saver]") {
  SaverFixture f;
  auto& [loop, dir, path, table] = f;
  {
    SessionSaver saver(loop.get(), &table, path, {milliseconds(0), hours(1)});
    moveKeys(table, 1, 50'000);
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writing(); }));
    moveKeys(table, 100'000, 7);
    bool flushed = false;
    saver.flush([&] { flushed = true; });
    CHECK_FALSE(flushed);
    REQUIRE(loop.runUntil([&] { return flushed; }, milliseconds(20'000)));
    CHECK(saver.writesCompleted() == 2);
    CHECK(movedInFile(path) == 50'007);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("an unwritable state file is logged and the saver goes on", "[core][saver]") {
  SaverFixture f;
  auto& [loop, dir, path, table] = f;
  {
    SessionSaver saver(loop.get(), &table, dir.file("missing-dir/moved-keys.json"), {milliseconds(0), hours(1)});
    moveKeys(table, 1, 1);
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 1; }));
    CHECK_FALSE(testing::fileExists(dir.file("missing-dir/moved-keys.json")));
    saver.changed();
    REQUIRE(loop.runUntil([&] { return saver.writesCompleted() == 2; }));
  }
  CHECK(loop.close() == 0);
}

}  // namespace stickyproxy
