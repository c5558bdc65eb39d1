// Issue 9, "Repeated kills strand a user": real stickyproxy-backend workers sharing one state
// directory, driven directly (no proxy) so that each way a moved session used to lock its user
// out happens on purpose, with X-Sticky-Previous-Worker sent by hand where the proxy would send
// it. After each, the same user (the same cookie jar) must get through upload, analysis and a
// map: a session the app cannot find is adopted from wherever its files are or starts afresh.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/app_client.h"
#include "tests/integration/harness.h"
#include "tests/integration/multipart_form.h"
#include "tests/integration/ward_dataset.h"

using namespace stickyproxy::integration;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPreviousWorker = "X-Sticky-Previous-Worker";

// stickyproxy-backend workers named `names`, all with the state directory <dir>/state, as the
// proxy starts them. The user has one connection per worker, in that order.
struct Workers {
  Workers(const TempDir& dir, const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      list.push_back(std::make_unique<WorkerUnderTest>(dir, "stickyproxy-backend", name));
    }
  }
  AppClient user() const {
    std::vector<HttpClient> connections;
    for (const auto& worker : list) connections.push_back(worker->client());
    return AppClient(std::move(connections));
  }
  WorkerUnderTest& operator[](size_t index) { return *list.at(index); }

  std::vector<std::unique_ptr<WorkerUnderTest>> list;
};

std::string sessionDir(const TempDir& dir, const std::string& worker, const std::string& session) {
  return dir.file("state") + "/" + worker + "/uploads/" + session;
}

// The whole flow on the user's current connection, twice over for the upload: a user who is
// stuck fails it at the first step and again at the second.
void completesTheFlow(AppClient& user, const WardDataset& data) {
  for (int round = 0; round < 2; ++round) {
    AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
    INFO(upload.describe());
    REQUIRE(upload.status() == 200);
    REQUIRE(user.appSession() == upload.text("session_id"));
    AppReply analysis = user.postJson("/run_analysis", "{}");
    INFO(analysis.describe());
    REQUIRE(analysis.status() == 200);
    AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
    INFO(map.describe());
    REQUIRE(map.status() == 200);
    AppReply page = user.get(map.text("web_path"));
    REQUIRE(page.status() == 200);
    CHECK(page.http.body.find("<svg") != std::string::npos);
  }
}

// Uploads and analyses on the current connection; returns the session id.
std::string startSession(AppClient& user, const WardDataset& data) {
  AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
  INFO(upload.describe());
  REQUIRE(upload.status() == 200);
  AppReply analysis = user.postJson("/run_analysis", "{}");
  INFO(analysis.describe());
  REQUIRE(analysis.status() == 200);
  return user.appSession();
}

}  // namespace

TEST_CASE("a worker that resumes after its session was adopted away lets it go instead of refusing uploads",
          "[integration][app][adoption]") {
  TempDir dir("stickyproxy-adoption");
  WardDataset data = generateWardDataset(dir.path(), 21, 120);
  Workers workers(dir, {"w1", "w2"});
  AppClient unannounced = workers.user();
  AppClient announced = workers.user();
  const std::string first = startSession(unannounced, data);
  const std::string second = startSession(announced, data);

  // w1 hangs; the proxy marks it down and moves both users to w2, which adopts their files.
  workers[0].process().kill(SIGSTOP);
  for (AppClient* user : {&unannounced, &announced}) {
    user->use(1);
    AppReply status = user->send("GET", "/session_status", {{std::string(kPreviousWorker), "w1"}}, {});
    INFO(status.describe());
    REQUIRE(status.text("session_id") == user->appSession());
    CHECK(status.flag("analysis_complete"));
  }
  CHECK(fs::is_directory(sessionDir(dir, "w2", first)));
  CHECK_FALSE(fs::exists(sessionDir(dir, "w1", first)));
  workers[0].process().kill(SIGCONT);

  // w1 still holds both sessions in memory. Back on w1 without an announcement (the proxy lost
  // track): the session is unknown there now, and an upload starts afresh. Before, w1 answered
  // from memory and every upload got 409 "This session changed during the upload".
  unannounced.use(0);
  AppReply status = unannounced.get("/session_status");
  CHECK(status.isNull("session_id"));
  completesTheFlow(unannounced, data);
  CHECK(unannounced.appSession() != first);
  // w2 keeps the files it adopted; they were never w1's to touch again.
  CHECK(fs::exists(sessionDir(dir, "w2", first) + "/session.json"));

  // Back on w1 announced (w2 died, say): w1 takes the files back and the analysis with them.
  announced.use(0);
  AppReply map = announced.send("POST", "/get_visualization",
                                {{"Content-Type", "application/json"}, {std::string(kPreviousWorker), "w2"}},
                                jsonBody({{"type", "pca_map"}}));
  INFO(map.describe());
  CHECK(map.status() == 200);
  CHECK(fs::exists(sessionDir(dir, "w1", second) + "/session.json"));
  CHECK_FALSE(fs::exists(sessionDir(dir, "w2", second)));
  completesTheFlow(announced, data);
}

TEST_CASE("an announcement naming a worker that never held the session still brings its files",
          "[integration][app][adoption]") {
  // Moved twice before its next request (w1 -> w2 -> w3): the proxy names w2, the files are on w1.
  TempDir dir("stickyproxy-adoption");
  WardDataset data = generateWardDataset(dir.path(), 22, 120);
  Workers workers(dir, {"w1", "w2", "w3"});
  AppClient user = workers.user();
  const std::string session = startSession(user, data);

  user.use(2);
  AppReply status = user.send("GET", "/session_status", {{std::string(kPreviousWorker), "w2"}}, {});
  INFO(status.describe());
  CHECK(status.text("session_id") == session);
  CHECK(status.flag("analysis_complete"));
  CHECK(fs::exists(sessionDir(dir, "w3", session) + "/session.json"));
  CHECK_FALSE(fs::exists(sessionDir(dir, "w1", session)));
  // The user goes on without uploading again.
  AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  INFO(map.describe());
  CHECK(map.status() == 200);
  completesTheFlow(user, data);

  // w1 still had the session in memory; the user lands there again, announced from w2 once
  // more (the proxy's table is behind): the files are found on w3.
  const std::string now_on_w3 = user.appSession();
  user.use(0);
  status = user.send("GET", "/session_status", {{std::string(kPreviousWorker), "w2"}}, {});
  CHECK(status.text("session_id") == now_on_w3);
  CHECK(status.flag("analysis_complete"));
  completesTheFlow(user, data);
}

TEST_CASE("an upload that completes after its session was adopted away is kept in a fresh session",
          "[integration][app][adoption]") {
  TempDir dir("stickyproxy-adoption");
  WardDataset data = generateWardDataset(dir.path(), 23, 120);
  Workers workers(dir, {"w1", "w2"});
  AppClient user = workers.user();
  const std::string session = startSession(user, data);

  // The upload's head and half its body reach w1; the rest waits while the session moves.
  MultipartForm form;
  form.file("csv_file", "wards.csv", data.csv, "text/csv");
  form.file("shapefile", "wards.zip", data.zip, "application/zip");
  const std::string body = form.body();
  HttpClient uploader = workers[0].client();
  uploader.sendRaw("POST /upload_both_files HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: chatmrpt_session=" + session +
                   "\r\nContent-Type: " + form.contentType() + "\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body.substr(0, body.size() / 2));
  const std::string staging_root = dir.file("state") + "/w1/staging";
  auto upload_started = [&] {
    std::error_code ignored;
    for (const auto& entry : fs::directory_iterator(staging_root, ignored)) {
      if (entry.path().filename().string().rfind("discarded-", 0) != 0) return true;
    }
    return false;
  };
  REQUIRE(waitUntil(upload_started, 10s));

  user.use(1);
  AppReply status = user.send("GET", "/session_status", {{std::string(kPreviousWorker), "w1"}}, {});
  REQUIRE(status.text("session_id") == session);
  REQUIRE(fs::exists(sessionDir(dir, "w2", session)));

  uploader.sendRaw(body.substr(body.size() / 2));
  Response committed = uploader.readResponse();
  INFO(committed.status << " " << committed.body);
  CHECK(committed.status == 200);
  std::optional<std::string> fresh = committed.setCookieValue(kAppCookieName);
  REQUIRE(fresh);
  CHECK(*fresh != session);

  // The browser keeps the cookie of that answer and goes on on w1 with the data it uploaded.
  user.setCookie(kAppCookieName, *fresh);
  user.use(0);
  AppReply analysis = user.postJson("/run_analysis", "{}");
  INFO(analysis.describe());
  CHECK(analysis.status() == 200);
  completesTheFlow(user, data);
  // Had the answer been lost, the old cookie must not lock the user out on w1 either.
  AppClient old_cookie = workers.user();
  old_cookie.setCookie(kAppCookieName, session);
  completesTheFlow(old_cookie, data);
}

TEST_CASE("a chunked upload whose session was adopted away recovers by sending its chunks again",
          "[integration][app][adoption]") {
  TempDir dir("stickyproxy-adoption");
  WardDataset data = generateWardDataset(dir.path(), 24, 120);
  Workers workers(dir, {"w1", "w2"});
  AppClient user = workers.user();
  constexpr size_t kChunk = 16 * 1024;
  const size_t csv_chunks = chunkCount(data.csv.size(), kChunk);
  const size_t zip_chunks = chunkCount(data.zip.size(), kChunk);
  auto send_chunks = [&](const std::string& upload_id) {
    for (const AppReply& reply : user.uploadChunks(upload_id, "csv", data.csv, kChunk)) REQUIRE(reply.status() == 200);
    for (const AppReply& reply : user.uploadChunks(upload_id, "shapefile", data.zip, kChunk)) {
      REQUIRE(reply.status() == 200);
    }
  };
  send_chunks("upload-first");
  const std::string session = user.appSession();
  REQUIRE(!session.empty());

  // w2 adopts the session, chunks and all; the user comes back to w1 unannounced.
  user.use(1);
  REQUIRE(user.send("GET", "/session_status", {{std::string(kPreviousWorker), "w1"}}, {}).text("session_id") ==
          session);
  user.use(0);
  AppReply missing = user.finalizeUpload("upload-first", "wards.csv", "wards.zip", csv_chunks, zip_chunks);
  CHECK(missing.status() == 400);
  CHECK(missing.text("message") == "Missing chunk 0 for csv");  // true: they are on w2

  send_chunks("upload-again");
  AppReply finalized = user.finalizeUpload("upload-again", "wards.csv", "wards.zip", csv_chunks, zip_chunks);
  INFO(finalized.describe());
  REQUIRE(finalized.status() == 200);
  CHECK(user.appSession() != session);
  CHECK(fs::exists(sessionDir(dir, "w2", session) + "/session.json"));
  REQUIRE(user.postJson("/run_analysis", "{}").status() == 200);
  REQUIRE(user.postJson("/get_visualization", jsonBody({{"type", "box_plot"}})).status() == 200);
  completesTheFlow(user, data);
}

TEST_CASE("a session whose results folder is gone still gets its maps and report, not 409 for ever",
          "[integration][app][adoption]") {
  // A worker killed between an upload's data swap and its state save leaves flags that promise
  // an analysis whose results/ folder was already discarded. Before, every map answered 409
  // "This session changed while the map was drawn; ask for it again".
  TempDir dir("stickyproxy-adoption");
  WardDataset data = generateWardDataset(dir.path(), 25, 120);
  Workers workers(dir, {"w1"});
  AppClient user = workers.user();
  const std::string session = startSession(user, data);
  fs::remove_all(sessionDir(dir, "w1", session) + "/results");
  for (int attempt = 0; attempt < 2; ++attempt) {
    AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
    INFO(map.describe());
    CHECK(map.status() == 200);
  }
  AppReply report = user.postJson("/generate_report", jsonBody({{"format", "html"}}));
  INFO(report.describe());
  CHECK(report.status() == 200);
  completesTheFlow(user, data);
}
