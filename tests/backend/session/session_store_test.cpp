#include "backend/session/session_store.h"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "tests/proxy/test_files.h"

using namespace stickyproxy::backend;
namespace fs = std::filesystem;

namespace {

using StateDir = stickyproxy::testing::TempDir;

const auto kNow = WallClock::time_point(std::chrono::hours(500000));

void writeText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("a new session gets a fresh id and its own directory under the worker's root", "[backend][session]") {
  StateDir dir;
  SessionStore store(dir.path(), "w1", std::chrono::minutes(30));
  std::string error;
  SessionState* first = store.create(kNow, &error);
  REQUIRE(first != nullptr);
  SessionState* second = store.create(kNow, &error);
  REQUIRE(second != nullptr);
  CHECK(SessionStore::isValidId(first->id));
  CHECK(first->id != second->id);
  CHECK(fs::is_directory(dir.path() + "/w1/uploads/" + first->id));
  CHECK(fs::exists(dir.path() + "/w1/uploads/" + first->id + "/session.json"));
  CHECK(store.find(first->id, kNow) == first);
  CHECK(store.size() == 2);
}

TEST_CASE("ids that are not ours never become paths", "[backend][session]") {
  StateDir dir;
  SessionStore store(dir.path(), "w1", std::chrono::minutes(30));
  for (std::string_view bad : {"../../etc/passwd", "", "ABCDEF0123456789ABCDEF0123456789", "0123456789abcdef0123456789abcde",
                               "0123456789abcdef0123456789abcdef0", "0123456789abcdef/123456789abcdef"}) {
    CHECK_FALSE(SessionStore::isValidId(bad));
    CHECK(store.find(bad, kNow) == nullptr);
    std::string error;
    CHECK(store.adopt(bad, "w2", kNow, &error) == nullptr);
  }
  CHECK(store.find("0123456789abcdef0123456789abcdef", kNow) == nullptr);  // valid shape, unknown
}

TEST_CASE("rotating a session moves its files to the new id and forgets the old one", "[backend][session]") {
  StateDir dir;
  SessionStore store(dir.path(), "w1", std::chrono::minutes(30));
  std::string error;
  SessionState* session = store.create(kNow, &error);
  std::string old_id = session->id;
  writeText(store.directoryOf(old_id) + "/wards.csv", "WardName\nA\n");
  session->csv_loaded = true;
  REQUIRE(store.save(*session, &error));
  SessionState* rotated = store.rotate(old_id, kNow, &error);
  REQUIRE(rotated != nullptr);
  CHECK(rotated->id != old_id);
  CHECK(rotated->csv_loaded);
  CHECK(store.find(old_id, kNow) == nullptr);
  CHECK_FALSE(fs::exists(store.directoryOf(old_id)));
  CHECK(fs::exists(store.directoryOf(rotated->id) + "/wards.csv"));
}

TEST_CASE("a session re-pinned from another worker is adopted whole, by rename", "[backend][session]") {
  StateDir dir;
  SessionStore old_worker(dir.path(), "w2", std::chrono::minutes(30));
  std::string error;
  SessionState* session = old_worker.create(kNow, &error);
  session->csv_loaded = true;
  session->shapefile_loaded = true;
  session->analysis_complete = true;
  session->variables_used = {"pfpr", "elevation"};
  session->current_map_page = 3;
  REQUIRE(old_worker.save(*session, &error));
  writeText(old_worker.directoryOf(session->id) + "/analysis_vulnerability_rankings.csv", "ranks");
  std::string id = session->id;

  SessionStore new_worker(dir.path(), "w3", std::chrono::minutes(30));
  CHECK(new_worker.find(id, kNow) == nullptr);  // unknown here until adopted
  SessionState* adopted = new_worker.adopt(id, "w2", kNow, &error);
  REQUIRE(adopted != nullptr);
  CHECK(adopted->analysis_complete);
  CHECK(adopted->variables_used == std::vector<std::string>{"pfpr", "elevation"});
  CHECK(adopted->current_map_page == 3);
  CHECK(fs::exists(new_worker.directoryOf(id) + "/analysis_vulnerability_rankings.csv"));
  CHECK_FALSE(fs::exists(dir.path() + "/w2/uploads/" + id));

  // Adopting again is a no-op; adopting from a worker that has nothing fails cleanly.
  CHECK(new_worker.adopt(id, "w2", kNow, &error) == adopted);
  CHECK(new_worker.adopt("0123456789abcdef0123456789abcdef", "w2", kNow, &error) == nullptr);
  CHECK(error == "no files of this session on w2");
  CHECK(new_worker.adopt(id, "../w2", kNow, &error) == nullptr);
  CHECK(error == "invalid previous worker");
}

TEST_CASE("a restarted worker recovers the sessions on its disk", "[backend][session]") {
  StateDir dir;
  std::string id;
  {
    SessionStore before(dir.path(), "w1", std::chrono::minutes(30));
    std::string error;
    SessionState* session = before.create(kNow, &error);
    session->csv_loaded = true;
    REQUIRE(before.save(*session, &error));
    id = session->id;
  }
  fs::create_directories(dir.path() + "/w1/uploads/not-a-session");
  SessionStore after(dir.path(), "w1", std::chrono::minutes(30));
  CHECK(after.recover(kNow) == 1);
  REQUIRE(after.find(id, kNow) != nullptr);
  CHECK(after.find(id, kNow)->csv_loaded);
}

TEST_CASE("removing a session by its own id forgets it and deletes its folder", "[backend][session]") {
  StateDir dir;
  SessionStore store(dir.path(), "w1", std::chrono::minutes(30));
  std::string error;
  SessionState* session = store.create(kNow, &error);
  REQUIRE(session != nullptr);
  const std::string id = session->id;
  store.remove(session->id);  // the view dies with the session: remove() must copy it first
  CHECK(store.find(id, kNow) == nullptr);
  CHECK_FALSE(fs::exists(dir.path() + "/w1/uploads/" + id));
  CHECK(store.size() == 0);
}

TEST_CASE("idle sessions expire and their folders are reclaimed", "[backend][session]") {
  StateDir dir;
  SessionStore store(dir.path(), "w1", std::chrono::minutes(30));
  std::string error;
  std::string idle = store.create(kNow, &error)->id;
  std::string busy = store.create(kNow, &error)->id;
  store.find(busy, kNow + std::chrono::minutes(20));
  CHECK(store.expireIdle(kNow + std::chrono::minutes(31)) == 1);
  CHECK(store.find(idle, kNow) == nullptr);
  CHECK_FALSE(fs::exists(store.directoryOf(idle)));
  CHECK(store.find(busy, kNow) != nullptr);
}
