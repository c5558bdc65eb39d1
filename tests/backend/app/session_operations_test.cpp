// SessionOperations and AppContext::sessionOf on a loop of their own, with sessions that go
// away under them the way they do when the proxy moves a user between workers.
#include "backend/app/session_operations.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>

#include "backend/app/session_layout.h"
#include "backend/data/synthetic_data.h"
#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

using namespace stickyproxy::backend;
namespace fs = std::filesystem;

namespace {

using stickyproxy::RequestHead;
using stickyproxy::testing::TempDir;
using stickyproxy::testing::TestLoop;
using stickyproxy::testing::writeFile;

BackendOptions optionsFor(const TempDir& state, std::string name) {
  BackendOptions options;
  options.name = std::move(name);
  options.state_dir = state.path();
  return options;
}

// An upload as the routes leave it for commitUpload: a staging directory with the files.
std::string stageUpload(SessionOperations& operations, bool good = true) {
  std::string error;
  std::string staging = operations.newStagingDir(&error);
  REQUIRE_FALSE(staging.empty());
  if (good) {
    SyntheticOptions options;
    options.wards = 40;
    SyntheticDataset dataset = makeSyntheticDataset(options);
    REQUIRE(writeSyntheticCsv(dataset, joinPath(staging, kCsvFile)).ok());
    REQUIRE(writeSyntheticShapefileZip(dataset, joinPath(staging, kShapefileZip)).ok());
  } else {
    writeFile(joinPath(staging, kCsvFile), "not,a\n\"table");
  }
  writeFile(joinPath(staging, kUploadMetaFile), R"({"csv_filename":"w.csv","shapefile_filename":"w.zip"})");
  return staging;
}

Answer commit(TestLoop& loop, SessionOperations& operations, const std::string& session_id,
              const std::string& staging) {
  std::optional<Answer> answer;
  operations.commitUpload(session_id, staging, [&](Answer result) { answer = std::move(result); });
  REQUIRE(loop.runUntil([&] { return answer.has_value(); }, std::chrono::seconds(30)));
  return *answer;
}

std::string sessionIdOf(const Answer& answer) {
  auto it = answer.body.find("session_id");
  return it != answer.body.end() && it->second.is<std::string>() ? it->second.get<std::string>() : std::string();
}

RequestHead requestWith(const std::string& session_id, const char* previous_worker = nullptr) {
  RequestHead request;
  request.method = "GET";
  request.target = "/session_status";
  request.headers.add("Cookie", std::string(kSessionCookie) + "=" + session_id);
  if (previous_worker != nullptr) request.headers.add(std::string(kPreviousWorkerHeader), previous_worker);
  return request;
}

}  // namespace

TEST_CASE("an upload whose session was adopted away meanwhile lands in a fresh session, not a 409", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    AppContext app(loop.get(), optionsFor(state, "w1"));
    SessionOperations operations(app);
    std::string error;
    const std::string id = app.sessions().create(app.now(), &error)->id;
    const std::string staging = stageUpload(operations);
    // While the upload was checked, the proxy moved the user to w2, which adopted the files.
    SessionStore w2(state.path(), "w2", std::chrono::hours(1));
    REQUIRE(w2.adopt(id, "w1", app.now(), &error) != nullptr);

    Answer answer = commit(loop, operations, id, staging);
    INFO(answer.message());
    REQUIRE(answer.http_status == 200);
    const std::string fresh = sessionIdOf(answer);
    CHECK(SessionStore::isValidId(fresh));
    CHECK(fresh != id);
    SessionState* session = app.sessions().find(fresh, app.now());
    REQUIRE(session != nullptr);
    CHECK(session->csv_loaded);
    CHECK(session->shapefile_loaded);
    CHECK(fs::exists(joinPath(joinPath(app.sessions().directoryOf(fresh), kDataDir), kCsvFile)));
    CHECK(app.sessions().find(id, app.now()) == nullptr);
    CHECK(fs::is_directory(w2.directoryOf(id)));  // the adopter's files are left alone

    // The user goes on with the fresh session: the next upload rotates it as usual.
    Answer again = commit(loop, operations, fresh, stageUpload(operations));
    CHECK(again.http_status == 200);
    CHECK(sessionIdOf(again) != fresh);
    CHECK(app.sessions().find(sessionIdOf(again), app.now()) != nullptr);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("an upload whose session was rotated or cleared by another request still succeeds", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    AppContext app(loop.get(), optionsFor(state, "w1"));
    SessionOperations operations(app);
    std::string error;
    const std::string rotated = app.sessions().create(app.now(), &error)->id;
    std::string staging = stageUpload(operations);
    REQUIRE(app.sessions().rotate(rotated, app.now(), &error) != nullptr);  // a parallel upload
    Answer answer = commit(loop, operations, rotated, staging);
    CHECK(answer.http_status == 200);
    CHECK(app.sessions().find(sessionIdOf(answer), app.now()) != nullptr);

    const std::string cleared = app.sessions().create(app.now(), &error)->id;
    staging = stageUpload(operations);
    app.sessions().remove(cleared);
    answer = commit(loop, operations, cleared, staging);
    CHECK(answer.http_status == 200);
    CHECK(app.sessions().find(sessionIdOf(answer), app.now()) != nullptr);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("bad data is refused whatever became of the session, and starts no session", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    AppContext app(loop.get(), optionsFor(state, "w1"));
    SessionOperations operations(app);
    std::string error;
    const std::string id = app.sessions().create(app.now(), &error)->id;
    const std::string staging = stageUpload(operations, false);
    app.sessions().remove(id);
    Answer answer = commit(loop, operations, id, staging);
    CHECK(answer.http_status == 400);
    CHECK(app.sessions().size() == 0);
    CHECK_FALSE(fs::exists(staging));
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("sessionOf adopts from any sibling on an announcement, and from none without one", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    SessionStore w1(state.path(), "w1", std::chrono::hours(1));
    std::string error;
    const std::string id = w1.create(WallClock::now(), &error)->id;
    AppContext w3(loop.get(), optionsFor(state, "w3"));

    // Unannounced: w1 may still be answering for this session, so its files stay where they are.
    CHECK(w3.sessionOf(requestWith(id)) == nullptr);
    CHECK(w1.find(id, WallClock::now()) != nullptr);
    CHECK_FALSE(fs::exists(w3.sessions().directoryOf(id)));

    // Announced from w2, which never held it (moved twice before its next request).
    SessionState* adopted = w3.sessionOf(requestWith(id, "w2"));
    REQUIRE(adopted != nullptr);
    CHECK(adopted->id == id);
    CHECK(fs::exists(w3.sessions().directoryOf(id) + "/session.json"));
    CHECK(w1.find(id, WallClock::now()) == nullptr);  // w1 lets go of what it no longer holds

    // An announcement this app cannot trust as a name adopts nothing.
    const std::string other = w1.create(WallClock::now(), &error)->id;
    CHECK(w3.sessionOf(requestWith(other, "../w1")) == nullptr);
    CHECK(w1.find(other, WallClock::now()) != nullptr);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("the server's own I/O failures are answered 500 with a plain message, never a path", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    AppContext app(loop.get(), optionsFor(state, "w1"));
    SessionOperations operations(app);
    std::string error;
    const std::string id = app.sessions().create(app.now(), &error)->id;

    // An upload whose CSV the server cannot open (its own staging file is gone): not the user's fault.
    std::string staging = stageUpload(operations);
    fs::remove(joinPath(staging, kCsvFile));
    Answer unreadable = commit(loop, operations, id, staging);
    CHECK(unreadable.http_status == 500);
    CHECK(unreadable.message() == "Could not store the upload");
    CHECK(picojson::value(unreadable.body).serialize().find(state.path()) == std::string::npos);
    CHECK(app.serverFailures() == 1);
    CHECK(app.sessions().find(id, app.now()) != nullptr);  // the session is as it was

    // A good upload, then the worker's staging area becomes unusable before the analysis.
    Answer uploaded = commit(loop, operations, id, stageUpload(operations));
    REQUIRE(uploaded.http_status == 200);
    const std::string staging_root = state.path() + "/w1/staging";
    fs::remove_all(staging_root);
    writeFile(staging_root, "not a directory");
    std::optional<Answer> analysis;
    operations.runAnalysis(sessionIdOf(uploaded), {}, [&](Answer answer) { analysis = std::move(answer); });
    REQUIRE(loop.runUntil([&] { return analysis.has_value(); }, std::chrono::seconds(30)));
    CHECK(analysis->http_status == 500);
    CHECK(analysis->message() == "Could not run the analysis");
    CHECK(picojson::value(analysis->body).serialize().find(state.path()) == std::string::npos);
    CHECK(app.serverFailures() == 2);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("sessions past the memory budget leave memory least recently used first and reload whole", "[app]") {
  TestLoop loop;
  TempDir state;
  BackendOptions options = optionsFor(state, "w1");
  options.memory_budget_bytes = 0;  // measured first, set below
  AppContext app(loop.get(), options);
  SessionOperations operations(app);

  // Five analysed sessions, made one after another (so each is more recently used than the last).
  auto analysed = [&](const std::string& id) {
    std::optional<Answer> answer;
    operations.runAnalysis(id, {}, [&](Answer result) { answer = std::move(result); });
    REQUIRE(loop.runUntil([&] { return answer.has_value(); }, std::chrono::seconds(30)));
    REQUIRE(answer->ok());
    return *answer;
  };
  std::vector<std::string> ids;
  std::vector<std::string> first_answers;
  for (int i = 0; i < 5; ++i) {
    std::string error;
    SessionState* session = app.sessions().create(app.now() + std::chrono::seconds(i), &error);
    REQUIRE(session != nullptr);
    Answer uploaded = commit(loop, operations, session->id, stageUpload(operations));
    REQUIRE(uploaded.ok());
    ids.push_back(sessionIdOf(uploaded));
    first_answers.push_back(picojson::value(analysed(ids.back()).body).serialize());
    // Distinct, increasing last_used times whatever the clock's resolution.
    app.sessions().find(ids.back(), app.now() + std::chrono::seconds(10 * (i + 1)));
  }
  const size_t per_session = app.sessions().find(ids[0], app.now() + std::chrono::seconds(10))->loaded_bytes;
  CHECK(per_session > 10000);
  CHECK(per_session < (2u << 20));  // what an idle session may keep resident
  for (int i = 1; i < 5; ++i) app.sessions().find(ids[i], app.now() + std::chrono::seconds(10 * (i + 1)));
  CHECK(app.sessions().evictions() == 0);
  CHECK(app.sessions().loadedBytes() >= 5 * per_session / 2);

  // A budget for about two and a half sessions: loading one more evicts the oldest until it fits.
  app.sessions().setMemoryBudget(per_session * 5 / 2);
  SessionState* newest = app.sessions().find(ids[4], app.now() + std::chrono::seconds(100));
  operations.noteLoaded(*newest);
  CHECK(app.sessions().loadedBytes() <= per_session * 5 / 2);
  CHECK(app.sessions().evictions() == 3);
  for (int i = 0; i < 3; ++i) {
    SessionState* evicted = app.sessions().find(ids[i], app.now() + std::chrono::seconds(10 * (i + 1)));
    REQUIRE(evicted != nullptr);
    CHECK(evicted->data == nullptr);
    CHECK(evicted->analysis == nullptr);
    CHECK(evicted->loaded_bytes == 0);
    CHECK(evicted->analysis_complete);  // the flags stay: only memory is given back
  }
  CHECK(app.sessions().find(ids[3], app.now() + std::chrono::seconds(40))->data != nullptr);
  CHECK(app.sessions().find(ids[4], app.now() + std::chrono::seconds(100))->data != nullptr);

  // The oldest session's next request reloads its data and analysis from its files, the same as
  // before, and in turn pushes out the least recently used of the others.
  std::optional<bool> reloaded;
  operations.withLoadedSession(ids[0], true, [&](SessionState* session, std::optional<Answer> failure) {
    reloaded = session != nullptr && !failure && session->data != nullptr && session->analysis != nullptr;
  });
  REQUIRE(loop.runUntil([&] { return reloaded.has_value(); }, std::chrono::seconds(30)));
  CHECK(*reloaded);
  SessionState* back = app.sessions().find(ids[0], app.now() + std::chrono::seconds(200));
  REQUIRE(back->data != nullptr);
  CHECK(back->data->outlines != nullptr);
  CHECK(back->data->outlines->size() == 40);
  CHECK(back->loaded_bytes > 0);
  CHECK(app.sessions().loadedBytes() <= per_session * 5 / 2 + per_session / 4);
  CHECK(app.sessions().find(ids[3], app.now() + std::chrono::seconds(40))->data == nullptr);
  CHECK(picojson::value(analysed(ids[0]).body).serialize() == first_answers[0]);
}

TEST_CASE("an operation whose session's data was evicted meanwhile still completes", "[app]") {
  TestLoop loop;
  TempDir state;
  AppContext app(loop.get(), optionsFor(state, "w1"));
  SessionOperations operations(app);
  std::string error;
  SessionState* session = app.sessions().create(app.now(), &error);
  REQUIRE(session != nullptr);
  Answer uploaded = commit(loop, operations, session->id, stageUpload(operations));
  REQUIRE(uploaded.ok());
  const std::string id = sessionIdOf(uploaded);

  // The analysis runs off the loop holding the data; the budget drops the session's copy meanwhile.
  std::optional<Answer> answer;
  operations.runAnalysis(id, {}, [&](Answer result) { answer = std::move(result); });
  SessionState* other = app.sessions().create(app.now() + std::chrono::seconds(5), &error);
  REQUIRE(other != nullptr);
  app.sessions().setMemoryBudget(1);
  app.sessions().noteLoaded(*other, 1);
  CHECK(app.sessions().find(id, app.now())->data == nullptr);
  REQUIRE(loop.runUntil([&] { return answer.has_value(); }, std::chrono::seconds(30)));
  CHECK(answer->ok());  // not "This session's data changed"
  CHECK(app.sessions().find(id, app.now())->data != nullptr);
}
