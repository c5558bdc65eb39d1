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
  CHECK(error == "no files of this session on w2 or any other worker");
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

TEST_CASE("a session whose files another worker adopted is forgotten, not served stale for ever",
          "[backend][session]") {
  // w1 hung (or kept running) while the proxy moved its user to w2, which adopted the files.
  StateDir dir;
  SessionStore w1(dir.path(), "w1", std::chrono::minutes(30));
  SessionStore w2(dir.path(), "w2", std::chrono::minutes(30));
  std::string error;
  SessionState* session = w1.create(kNow, &error);
  REQUIRE(session != nullptr);
  session->csv_loaded = true;
  REQUIRE(w1.save(*session, &error));
  const std::string id = session->id;
  REQUIRE(w2.adopt(id, "w1", kNow, &error) != nullptr);

  // Before, w1 still answered from memory and every upload's rotate() failed: 409 for ever.
  CHECK(w1.find(id, kNow) == nullptr);
  CHECK(w1.size() == 0);
  CHECK(w1.rotate(id, kNow, &error) == nullptr);
  CHECK(fs::is_directory(w2.directoryOf(id)));  // the holder's files are untouched

  // The session moves back, announced: w1 takes the files back and sees w2's state.
  SessionState* on_w2 = w2.find(id, kNow);
  REQUIRE(on_w2 != nullptr);
  on_w2->analysis_complete = true;
  REQUIRE(w2.save(*on_w2, &error));
  SessionState* back = w1.adopt(id, "w2", kNow, &error);
  REQUIRE(back != nullptr);
  CHECK(back->analysis_complete);
  CHECK(w2.find(id, kNow) == nullptr);
}

TEST_CASE("a stale session is also dropped by rotate(), and a late write's leftovers do not block adoption",
          "[backend][session]") {
  StateDir dir;
  SessionStore w1(dir.path(), "w1", std::chrono::minutes(30));
  SessionStore w2(dir.path(), "w2", std::chrono::minutes(30));
  std::string error;
  const std::string id = w1.create(kNow, &error)->id;
  REQUIRE(w2.adopt(id, "w1", kNow, &error) != nullptr);
  // A background job of w1 recreated part of the directory after the files had gone.
  fs::create_directories(w1.directoryOf(id) + "/data/shapefile");
  CHECK(w1.rotate(id, kNow, &error) == nullptr);
  CHECK(w1.size() == 0);
  CHECK_FALSE(fs::exists(w1.directoryOf(id)));

  // Leftovers of a session w1 no longer holds in memory are cleared by the adoption itself.
  fs::create_directories(w1.directoryOf(id) + "/chunks/upload-1");
  std::string source;
  REQUIRE(w1.adopt(id, "w2", kNow, &error, &source) != nullptr);
  CHECK(source == "w2");
  CHECK(fs::exists(w1.directoryOf(id) + "/session.json"));
  CHECK_FALSE(fs::exists(w1.directoryOf(id) + "/chunks"));
}

TEST_CASE("an announcement naming the wrong worker still finds the files on a sibling", "[backend][session]") {
  // Moved twice before its next request (w1 -> w2 -> w3): the proxy names w2, the files are on w1.
  StateDir dir;
  SessionStore w1(dir.path(), "w1", std::chrono::minutes(30));
  SessionStore w2(dir.path(), "w2", std::chrono::minutes(30));
  SessionStore w3(dir.path(), "w3", std::chrono::minutes(30));
  std::string error;
  SessionState* session = w1.create(kNow, &error);
  session->shapefile_loaded = true;
  REQUIRE(w1.save(*session, &error));
  const std::string id = session->id;

  std::string source;
  SessionState* adopted = w3.adopt(id, "w2", kNow, &error, &source);
  REQUIRE(adopted != nullptr);
  CHECK(source == "w1");
  CHECK(adopted->shapefile_loaded);
  CHECK_FALSE(fs::exists(w1.directoryOf(id)));
  CHECK(w1.find(id, kNow) == nullptr);

  // A worker that is gone for good (no store running) is searched too; so is a name announced
  // for this worker itself.
  fs::create_directories(dir.path() + "/w4/uploads");
  fs::rename(w3.directoryOf(id), dir.path() + "/w4/uploads/" + id);
  CHECK(w3.find(id, kNow) == nullptr);
  REQUIRE(w3.adopt(id, "w3", kNow, &error, &source) != nullptr);
  CHECK(source == "w4");
}

TEST_CASE("the sibling search follows no symlinks and leaves no state_dir", "[backend][session]") {
  StateDir dir;
  StateDir elsewhere;
  const std::string id = "0123456789abcdef0123456789abcdef";
  auto plant = [&](const std::string& uploads) {
    fs::create_directories(uploads + "/" + id);
    writeText(uploads + "/" + id + "/session.json", "{\"csv_loaded\": true}");
  };
  // A worker directory that is a symlink out of state_dir, and an uploads dir that is one.
  plant(elsewhere.path() + "/w9/uploads");
  fs::create_directory_symlink(elsewhere.path() + "/w9", dir.path() + "/w8");
  fs::create_directories(dir.path() + "/w7");
  fs::create_directory_symlink(elsewhere.path() + "/w9/uploads", dir.path() + "/w7/uploads");
  // A session directory that is a symlink, and one whose state file is.
  plant(elsewhere.path() + "/real");
  fs::create_directories(dir.path() + "/w6/uploads");
  fs::create_directory_symlink(elsewhere.path() + "/real/" + id, dir.path() + "/w6/uploads/" + id);
  fs::create_directories(dir.path() + "/w4/uploads/" + id);
  fs::create_symlink(elsewhere.path() + "/real/" + id + "/session.json", dir.path() + "/w4/uploads/" + id + "/session.json");

  SessionStore w1(dir.path(), "w1", std::chrono::minutes(30));
  std::string error;
  CHECK(w1.adopt(id, "w8", kNow, &error) == nullptr);
  CHECK(error == "no files of this session on w8 or any other worker");
  for (std::string_view bad : {"..", ".", "../w9", "w8/../../x", ""}) {
    CHECK(w1.adopt(id, bad, kNow, &error) == nullptr);
    CHECK(error == "invalid previous worker");
  }
  CHECK(fs::exists(elsewhere.path() + "/w9/uploads/" + id + "/session.json"));
  CHECK(fs::exists(elsewhere.path() + "/real/" + id + "/session.json"));
  CHECK(w1.size() == 0);

  // The same files as a real sibling's are taken.
  fs::create_directories(dir.path() + "/w5/uploads");
  fs::rename(elsewhere.path() + "/real/" + id, dir.path() + "/w5/uploads/" + id);
  fs::remove(dir.path() + "/w6/uploads/" + id);
  SessionState* adopted = w1.adopt(id, "w8", kNow, &error);
  REQUIRE(adopted != nullptr);
  CHECK(adopted->csv_loaded);
}

TEST_CASE("the map page saved lazily survives a restart, and a later durable save wins over it",
          "[backend][session]") {
  StateDir dir;
  std::string id;
  std::string error;
  {
    SessionStore before(dir.path(), "w1", std::chrono::minutes(30));
    SessionState* session = before.create(kNow, &error);
    session->analysis_complete = true;
    REQUIRE(before.save(*session, &error));
    session->current_map_page = 3;
    REQUIRE(before.saveLazily(*session, &error));
    id = session->id;
  }
  {
    SessionStore after(dir.path(), "w1", std::chrono::minutes(30));
    REQUIRE(after.recover(kNow) == 1);
    SessionState* session = after.find(id, kNow);
    REQUIRE(session != nullptr);
    CHECK(session->current_map_page == 3);
    CHECK(session->analysis_complete);
    // A new analysis resets the page durably: the lazy file's older page must not come back.
    session->current_map_page = 0;
    REQUIRE(after.save(*session, &error));
  }
  {
    SessionStore again(dir.path(), "w1", std::chrono::minutes(30));
    REQUIRE(again.recover(kNow) == 1);
    CHECK(again.find(id, kNow)->current_map_page == 0);
  }
  // A lazy file a machine crash left empty or torn is ignored: session.json's page stands.
  writeText(dir.path() + "/w1/uploads/" + id + "/view.json", "{\"current_map_pa");
  SessionStore torn(dir.path(), "w1", std::chrono::minutes(30));
  REQUIRE(torn.recover(kNow) == 1);
  CHECK(torn.find(id, kNow)->current_map_page == 0);
  CHECK(torn.find(id, kNow)->analysis_complete);
}
