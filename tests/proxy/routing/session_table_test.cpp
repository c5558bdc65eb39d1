#include "proxy/routing/session_table.h"

#include <catch2/catch.hpp>
#include <picojson.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include "proxy/routing/stable_hash.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

constexpr milliseconds kSessionIdle = minutes(30);
constexpr milliseconds kMovedIdle = hours(24);
// A whole millisecond, as the state file stores times.
const WallTime kT0{milliseconds(1'700'000'000'000)};
constexpr size_t kMax = 100000;

using testing::readFile;
using testing::TempDir;
using testing::writeFile;

// What a test expects of the entry for one key; fields left empty are not checked.
struct Expected {
  std::optional<std::string> worker = std::nullopt;
  std::optional<std::string> previous_worker = std::nullopt;
  std::optional<bool> moved = std::nullopt;
  std::optional<bool> announce_previous = std::nullopt;
  std::optional<WallTime> last_seen = std::nullopt;
};

void checkEntry(const SessionTable& table, uint64_t key, const Expected& expected) {
  INFO("key " << key);
  std::optional<SessionEntry> entry = table.find(key);
  REQUIRE(entry);
  if (expected.worker) CHECK(entry->worker == *expected.worker);
  if (expected.previous_worker) CHECK(entry->previous_worker == *expected.previous_worker);
  if (expected.moved) CHECK(entry->moved == *expected.moved);
  if (expected.announce_previous) CHECK(entry->announce_previous == *expected.announce_previous);
  if (expected.last_seen) CHECK(entry->last_seen == *expected.last_seen);
}

TEST_CASE("touching a new key pins it where the ring sent it", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  CHECK(!table.find(1));
  table.touch(1, "w1", kT0);
  checkEntry(table, 1,
             {.worker = "w1", .previous_worker = "", .moved = false, .announce_previous = false, .last_seen = kT0});
  CHECK(table.size() == 1);
  CHECK(table.movedCount() == 0);
}

TEST_CASE("touching a ring-pinned key follows the ring and refreshes last_seen", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.touch(1, "w2", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w2", .last_seen = kT0 + minutes(1)});
  CHECK(table.size() == 1);
}

TEST_CASE("a worker's number from workerId() stays the same and touches as its name does", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  SessionTable::WorkerId w2 = table.workerId("w2");
  SessionTable::WorkerId w1 = table.workerId("w1");
  CHECK(w1 != w2);
  CHECK(table.workerId("w2") == w2);
  table.touch(1, w2, kT0);
  table.touch(2, "w2", kT0);
  checkEntry(table, 1, {.worker = "w2", .moved = false, .last_seen = kT0});
  checkEntry(table, 2, {.worker = "w2", .moved = false, .last_seen = kT0});
  CHECK(table.activeSessionsOf("w2") == 2);
  table.touch(1, w1, kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w1", .last_seen = kT0 + minutes(1)});
  CHECK(table.activeSessionsOf("w1") == 1);
}

TEST_CASE("a moved key stays on its new worker when touched with the ring's choice",
          "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.move(1, "w1", "w3", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w3",
                        .previous_worker = "w1",
                        .moved = true,
                        .announce_previous = true,
                        .last_seen = kT0 + minutes(1)});
  CHECK(table.movedCount() == 1);

  // w1 is back and the ring picks it again: the move wins.
  table.touch(1, "w1", kT0 + minutes(2));
  checkEntry(table, 1, {.worker = "w3", .previous_worker = "w1", .last_seen = kT0 + minutes(2)});
}

TEST_CASE("moving an unknown key creates a moved entry", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(7, "w1", "w2", kT0);
  checkEntry(table, 7, {.worker = "w2", .previous_worker = "w1", .moved = true});
  CHECK(table.movedCount() == 1);
}

TEST_CASE("a key moved twice names the worker that last held its state", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.move(1, "w1", "w2", kT0);
  table.markAnnounced(1);  // w2 adopted the state from w1
  table.move(1, "w2", "w3", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w3", .previous_worker = "w2", .announce_previous = true});
  CHECK(table.movedCount() == 1);
}

TEST_CASE("a key moved twice before any request keeps naming its first worker", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);  // w2 never saw the session: its state is still on w1
  table.move(1, "w2", "w3", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w3", .previous_worker = "w1", .announce_previous = true});
}

TEST_CASE("a key moved back to its first worker before its move was announced names the worker it left",
          "[routing]") {
  // w2 may have adopted the files under a request whose answer never came.
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  table.move(1, "w2", "w1", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w1", .previous_worker = "w2", .announce_previous = true});
}

TEST_CASE("a key moved back to its first worker after adoption names the worker it left",
          "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  table.markAnnounced(1);
  table.move(1, "w2", "w1", kT0 + minutes(1));
  checkEntry(table, 1, {.worker = "w1", .previous_worker = "w2", .announce_previous = true});
}

TEST_CASE("a move from a worker other than the current pin records that worker", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  table.move(1, "w4", "w3", kT0);
  checkEntry(table, 1, {.worker = "w3", .previous_worker = "w4"});
}

TEST_CASE("markAnnounced clears the announcement once", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  table.markAnnounced(1);
  checkEntry(table, 1, {.previous_worker = "w1", .moved = true, .announce_previous = false});
  table.markAnnounced(99);  // unknown: no entry appears
  CHECK(!table.find(99));
}

TEST_CASE("expiry drops idle sessions after session_idle and moved keys after moved_idle",
          "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.touch(2, "w1", kT0 + minutes(20));
  table.move(3, "w1", "w2", kT0);

  CHECK(table.advance(kT0 + kSessionIdle) == 0);  // exactly at the window: still kept
  CHECK(table.advance(kT0 + kSessionIdle + milliseconds(1)) == 1);
  CHECK(!table.find(1));
  CHECK(table.find(2).has_value());
  CHECK(table.find(3).has_value());

  CHECK(table.advance(kT0 + kMovedIdle) == 1);  // key 2
  CHECK(table.find(3).has_value());
  CHECK(table.movedCount() == 1);
  CHECK(table.advance(kT0 + kMovedIdle + milliseconds(1)) == 1);
  CHECK(!table.find(3));
  CHECK(table.movedCount() == 0);
  CHECK(table.size() == 0);
}

TEST_CASE("active sessions are counted per worker within session_idle", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.touch(2, "w1", kT0 + minutes(10));
  table.touch(3, "w2", kT0 + minutes(10));
  table.move(4, "w1", "w3", kT0);
  using Counts = std::map<std::string, size_t>;
  table.advance(kT0 + minutes(10));
  CHECK(table.activeSessionsPerWorker() == Counts{{"w1", 2}, {"w2", 1}, {"w3", 1}});
  // Key 1 and the moved key 4 went idle at kT0: key 1 is dropped, the moved key kept but idle.
  table.advance(kT0 + minutes(31));
  CHECK(table.activeSessionsPerWorker() == Counts{{"w1", 1}, {"w2", 1}});
  CHECK(table.activeSessionsOf("w1") == 1);
  CHECK(table.activeSessionsOf("w3") == 0);
  table.advance(kT0 + minutes(41));
  CHECK(table.activeSessionsPerWorker().empty());
  CHECK(table.size() == 1);
}

TEST_CASE("keysPinnedTo lists moved and ring-pinned keys of a worker", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(4, "w1", kT0 - kSessionIdle - milliseconds(1));  // idle past its window
  table.touch(1, "w1", kT0);
  table.touch(2, "w2", kT0);
  table.move(3, "w2", "w1", kT0);
  table.advance(kT0);
  std::vector<uint64_t> keys = table.keysPinnedTo("w1");
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<uint64_t>{1, 3});
  CHECK(table.keysPinnedTo("w2") == std::vector<uint64_t>{2});
  CHECK(table.keysPinnedTo("w9").empty());
}

TEST_CASE("new idle windows apply from the next advance", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.move(2, "w1", "w2", kT0);
  table.setLimits(minutes(5), minutes(10), kMax);
  CHECK(table.advance(kT0 + minutes(6)) == 1);
  CHECK(table.activeSessionsPerWorker().empty());
  CHECK(table.advance(kT0 + minutes(11)) == 1);
  CHECK(table.size() == 0);
}

TEST_CASE("saved moved keys load into a new table unchanged", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);  // not moved: not saved
  table.move(2, "w1", "w2", kT0 + minutes(1));
  table.move(0xFFFFFFFFFFFFFFFFull, "w3", "w4", kT0 + minutes(2));  // above 2^53
  table.markAnnounced(0xFFFFFFFFFFFFFFFFull);
  table.move(0x8000000000000001ull, "w1", "w2", kT0);
  table.move(0x8000000000000001ull, "w2", "w3", kT0 + minutes(3));

  std::string error;
  REQUIRE(table.save(path, &error));
  CHECK(error.empty());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  SessionTable loaded(kSessionIdle, kMovedIdle, kMax);
  REQUIRE(loaded.load(path, kT0 + hours(1), &error));
  CHECK(loaded.size() == 3);
  CHECK(loaded.movedCount() == 3);
  CHECK(!loaded.find(1));
  for (uint64_t key_hash :
       {uint64_t{2}, uint64_t{0xFFFFFFFFFFFFFFFF}, uint64_t{0x8000000000000001}}) {
    std::optional<SessionEntry> original = table.find(key_hash);
    std::optional<SessionEntry> copy = loaded.find(key_hash);
    REQUIRE(copy);
    CHECK(copy->moved_at == original->moved_at);
    CHECK(copy->worker == original->worker);
    CHECK(copy->previous_worker == original->previous_worker);
    CHECK(copy->moved);
    CHECK(copy->announce_previous == original->announce_previous);
    CHECK(copy->last_seen == original->last_seen);
  }
  CHECK(loaded.find(0x8000000000000001ull)->previous_worker == "w1");
  CHECK_FALSE(loaded.find(0xFFFFFFFFFFFFFFFFull)->announce_previous);
}

TEST_CASE("saving twice replaces the file and the same table gives the same bytes",
          "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  for (uint64_t k = 0; k < 50; ++k) table.move(k * 0x9E3779B97F4A7C15ull, "w1", "w2", kT0);
  REQUIRE(table.save(path, nullptr));
  const std::string first = readFile(path);
  REQUIRE(table.save(path, nullptr));
  CHECK(readFile(path) == first);
}

TEST_CASE("the saved file holds key hashes, never the raw key", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  const std::string key = "feedfacecafebeefdeadbeef00c0ffee";
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(stableHash(key), "w1", "w2", kT0);
  REQUIRE(table.save(path, nullptr));
  const std::string text = readFile(path);
  CHECK(text.find(key) == std::string::npos);
  CHECK(text.find("feedface") == std::string::npos);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(stableHash(key)));
  CHECK(text.find(hex) != std::string::npos);
}

TEST_CASE("moved keys already expired when loading are skipped", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  table.move(2, "w1", "w2", kT0 + hours(2));
  REQUIRE(table.save(path, nullptr));

  SessionTable loaded(kSessionIdle, kMovedIdle, kMax);
  std::string error;
  REQUIRE(loaded.load(path, kT0 + kMovedIdle + hours(1), &error));
  CHECK(!loaded.find(1));
  CHECK(loaded.find(2).has_value());
  CHECK(loaded.movedCount() == 1);
}

TEST_CASE("loading a missing file succeeds and loads nothing", "[routing]") {
  TempDir dir;
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  std::string error;
  CHECK(table.load(dir.file("absent.json"), kT0, &error));
  CHECK(error.empty());
  CHECK(table.size() == 0);
}

TEST_CASE("loading a corrupt file fails and leaves the table as it was", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  const std::string good_entry =
      R"({"key_hash":"00000000000000aa","worker":"w2","previous_worker":"w1",)"
      R"("announce_previous":true,"last_seen_ms":1700000000000})";
  const std::string corrupt = GENERATE_COPY(
      std::string(""), std::string("{"), std::string("not json"), std::string("[]"),
      std::string(R"({"format":"other","version":1,"entries":[]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":2,"entries":[]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":{}})"),
      R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[)" + good_entry +
          R"(,{"key_hash":"AB","worker":"w2","previous_worker":"w1","announce_previous":true,)"
          R"("last_seen_ms":1700000000000}]})",
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[)"
                  R"({"key_hash":"00000000000000bb","worker":"","previous_worker":"w1",)"
                  R"("announce_previous":true,"last_seen_ms":1700000000000}]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[)"
                  R"({"key_hash":"00000000000000bb","worker":"w2","previous_worker":"w1",)"
                  R"("announce_previous":true,"last_seen_ms":1e999}]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[)"
                  R"({"key_hash":"00000000000000bb","worker":"w2","previous_worker":"w1",)"
                  R"("announce_previous":true,"last_seen_ms":-1}]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[)"
                  R"({"key_hash":"00000000000000bb","worker":"w2","previous_worker":"w1",)"
                  R"("announce_previous":"yes","last_seen_ms":1700000000000}]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[7]})"),
      std::string(R"({"format":"stickyproxy-moved-sessions","version":1,"entries":[]} x)"));
  writeFile(path, corrupt);

  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.touch(1, "w1", kT0);
  table.move(2, "w1", "w3", kT0);
  std::string error;
  INFO("file: " << corrupt);
  CHECK_FALSE(table.load(path, kT0, &error));
  CHECK_FALSE(error.empty());
  CHECK(error.find(path) != std::string::npos);
  CHECK(table.size() == 2);
  CHECK(table.movedCount() == 1);
  CHECK(!table.find(0xaa));
  CHECK(table.find(2)->worker == "w3");
}

TEST_CASE("loading keeps entries the running table already has", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  SessionTable saved(kSessionIdle, kMovedIdle, kMax);
  saved.move(1, "w1", "w2", kT0);
  saved.move(2, "w1", "w2", kT0);
  REQUIRE(saved.save(path, nullptr));

  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w4", kT0 + minutes(5));
  REQUIRE(table.load(path, kT0 + minutes(5), nullptr));
  CHECK(table.find(1)->worker == "w4");
  CHECK(table.find(2)->worker == "w2");
  CHECK(table.movedCount() == 2);
}

TEST_CASE("saving into a missing directory fails with a message", "[routing]") {
  TempDir dir;
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(1, "w1", "w2", kT0);
  std::string error;
  CHECK_FALSE(table.save(dir.file("no/such/dir/sessions.json"), &error));
  CHECK(error.find("sessions.json.tmp") != std::string::npos);
}

TEST_CASE("the saved file is plain JSON with hex key hashes", "[routing]") {
  TempDir dir;
  const std::string path = dir.file("sessions.json");
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  table.move(0x0123456789abcdefull, "w1", "w2", kT0);
  REQUIRE(table.save(path, nullptr));
  picojson::value root;
  const std::string text = readFile(path);
  REQUIRE(picojson::parse(root, text).empty());
  const picojson::array& entries = root.get("entries").get<picojson::array>();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].get("key_hash").to_str() == "0123456789abcdef");
  CHECK(entries[0].get("last_seen_ms").get<double>() == 1700000000000.0);
}

}  // namespace

TEST_CASE("the ceiling holds on every insertion path, dropping the least recently seen, plain before moved",
          "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, 3);
  table.move(1, "w1", "w2", kT0);
  table.touch(2, "w1", kT0 + minutes(1));
  table.touch(3, "w1", kT0 + minutes(2));
  table.touch(4, "w1", kT0 + minutes(3));  // drops 2: the oldest plain entry, not the older moved 1
  CHECK(table.size() == 3);
  CHECK(table.find(1).has_value());
  CHECK_FALSE(table.find(2));
  table.pin(5, "w3", kT0 + minutes(4));  // drops 3
  table.move(6, "w1", "w4", kT0 + minutes(5));  // drops 4
  CHECK(table.size() == 3);
  CHECK(table.movedCount() == 3);
  table.move(7, "w1", "w4", kT0 + minutes(6));  // only moved ones left: drops 1, the oldest
  CHECK_FALSE(table.find(1));
  CHECK(table.evictions() == 4);
  CHECK(table.movedPerWorker() == std::map<std::string, size_t>{{"w3", 1}, {"w4", 2}});

  TempDir dir;
  std::string error;
  REQUIRE(table.save(dir.path() + "/moved.json", &error));
  SessionTable small(kSessionIdle, kMovedIdle, 2);
  small.touch(9, "w1", kT0 + minutes(7));
  REQUIRE(small.load(dir.path() + "/moved.json", kT0 + minutes(7), &error));
  CHECK(small.size() == 2);  // room for one: the most recently seen (7)
  CHECK(small.find(7).has_value());
  CHECK(small.find(9).has_value());

  table.setLimits(kSessionIdle, kMovedIdle, 1);  // a lower ceiling on reload applies at once
  CHECK(table.size() == 1);
  CHECK(table.find(7).has_value());
}

TEST_CASE("counts kept up to date match a recount after any sequence of changes", "[routing]") {
  SessionTable table(minutes(10), hours(1), 300);
  std::mt19937_64 random(42);
  const std::vector<std::string> workers = {"w1", "w2", "w3", "w4"};
  WallTime now = kT0;
  for (int step = 0; step < 20000; ++step) {
    now += std::chrono::seconds(random() % 7);
    uint64_t key = random() % 500;
    const std::string& worker = workers[random() % workers.size()];
    switch (random() % 6) {
      case 0: case 1: case 2: table.touch(key, worker, now); break;
      case 3: table.move(key, workers[random() % workers.size()], worker, now); break;
      case 4: table.pin(key, worker, now); break;
      case 5: if (random() % 20 == 0) table.advance(now); break;
    }
    if (step % 997 != 0) continue;
    table.advance(now);
    std::map<std::string, size_t> active, moved;
    size_t entries = 0;
    for (uint64_t k = 0; k < 500; ++k) {
      std::optional<SessionEntry> entry = table.find(k);
      if (!entry) continue;
      ++entries;
      if (now - entry->last_seen <= minutes(10)) ++active[entry->worker];
      if (entry->moved) ++moved[entry->worker];
    }
    INFO("step " << step);
    CHECK(entries == table.size());
    CHECK(table.size() <= 300);
    CHECK(table.activeSessionsPerWorker() == active);
    CHECK(table.movedPerWorker() == moved);
  }
}

TEST_CASE("last activity per worker follows requests recorded for it", "[routing]") {
  SessionTable table(kSessionIdle, kMovedIdle, kMax);
  CHECK_FALSE(table.lastActivityOf("w1"));
  table.touch(1, "w1", kT0);
  table.touch(2, "w1", kT0 + minutes(2));
  table.move(2, "w1", "w2", kT0 + minutes(3));
  CHECK(table.lastActivityOf("w1") == kT0 + minutes(2));
  CHECK(table.lastActivityOf("w2") == kT0 + minutes(3));
}

}  // namespace stickyproxy
