// One bundled-app worker on its own (no proxy): what it keeps across a restart, and what it
// lets go when a session sits idle.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>

#include "tests/integration/app_client.h"
#include "tests/integration/harness.h"
#include "tests/integration/ward_dataset.h"

using namespace stickyproxy::integration;

namespace {

// stickyproxy-backend `name` on the Unix socket <dir>/<name>.sock with the state directory
// <dir>/state, keeping sessions for `idle_seconds`.
class BackendWorker {
 public:
  BackendWorker(const TempDir& dir, int idle_seconds, const std::string& name = "w1")
      : socket_(dir.file(name + ".sock")),
        process_({binaryPath("stickyproxy-backend"), "--name", name, "--listen", "unix:" + socket_, "--state-dir",
                  dir.file("state"), "--session-idle-timeout-s", std::to_string(idle_seconds)},
                 dir.file(name + ".log")) {
    bool up = waitUntil(
        [&] {
          try {
            return HttpClient::unixSocket(socket_, std::chrono::seconds(2)).get("/ping").status == 200;
          } catch (const HarnessError&) {
            return false;
          }
        },
        std::chrono::seconds(10));
    if (!up) throw HarnessError("backend did not answer /ping: " + process_.logText());
  }

  AppClient user() { return AppClient(HttpClient::unixSocket(socket_)); }
  ChildProcess& process() { return process_; }

 private:
  std::string socket_;
  ChildProcess process_;
};

}  // namespace

TEST_CASE("a restarted worker recovers its sessions from disk and goes on with them", "[integration][app]") {
  TempDir dir("stickyproxy-worker");
  WardDataset data = generateWardDataset(dir.path(), 11, 200);
  // One user throughout: the same cookie jar, reconnecting to the same socket path.
  AppClient user(HttpClient::unixSocket(dir.file("w1.sock")));
  auto worker = std::make_unique<BackendWorker>(dir, 3600);
  AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
  REQUIRE(upload.status() == 200);
  AppReply analysis = user.postJson("/run_analysis", "{}");
  REQUIRE(analysis.status() == 200);
  const std::vector<std::string> high_before = analysis.texts("high_risk_wards");
  const std::string cookie = user.appSession();
  REQUIRE(cookie == upload.text("session_id"));
  REQUIRE(worker->process().stop() == 0);
  worker = std::make_unique<BackendWorker>(dir, 3600);

  AppReply status = user.get("/session_status");
  REQUIRE(status.status() == 200);
  CHECK(status.text("session_id") == cookie);
  CHECK(status.flag("csv_loaded"));
  CHECK(status.flag("analysis_complete"));
  // The maps need the parsed data and the analysis back in memory: rebuilt from the files.
  AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  REQUIRE(map.status() == 200);
  AppReply page = user.get(map.text("web_path"));
  CHECK(page.status() == 200);
  CHECK(page.http.body.find("<svg") != std::string::npos);
  AppReply chat = user.postJson("/send_message", jsonBody({{"message", "which wards are highest risk"}}));
  REQUIRE(chat.status() == 200);
  for (const std::string& ward : high_before) CHECK(chat.text("response").find(ward) != std::string::npos);
}

TEST_CASE("sessions idle past the configured time expire and their files go", "[integration][app]") {
  TempDir dir("stickyproxy-worker");
  WardDataset data = generateWardDataset(dir.path(), 12, 200);
  BackendWorker worker(dir, 1);
  AppClient user = worker.user();
  AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
  REQUIRE(upload.status() == 200);
  const std::string session_dir = dir.file("state") + "/w1/uploads/" + upload.text("session_id");
  REQUIRE(std::filesystem::is_directory(session_dir));
  CHECK(waitUntil([&] { return !std::filesystem::exists(session_dir); }, std::chrono::seconds(15)));
  AppReply status = user.get("/session_status");
  CHECK(status.isNull("session_id"));
  AppReply analysis = user.postJson("/run_analysis", "{}");
  CHECK(analysis.status() == 400);
  CHECK(analysis.text("message") == "Please upload both CSV and shapefile data before running analysis");
}

TEST_CASE("a re-pin announced on any request, even the page, makes the new worker adopt the session",
          "[integration][app]") {
  TempDir dir("stickyproxy-worker");
  WardDataset data = generateWardDataset(dir.path(), 13, 200);
  BackendWorker w1(dir, 3600, "w1");
  BackendWorker w2(dir, 3600, "w2");
  std::vector<HttpClient> connections;
  connections.push_back(HttpClient::unixSocket(dir.file("w1.sock")));
  connections.push_back(HttpClient::unixSocket(dir.file("w2.sock")));
  AppClient user(std::move(connections));
  REQUIRE(user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip).status() == 200);
  REQUIRE(user.postJson("/run_analysis", "{}").status() == 200);
  const std::string session = user.appSession();

  user.use(1);
  // Unannounced, w2 does not know the session: the real app's failure.
  CHECK(user.postJson("/run_analysis", "{}").status() == 400);
  // The proxy's announcement rides on whatever request comes first after the move.
  AppReply page = user.send("GET", "/", {{"X-Sticky-Previous-Worker", "w1"}}, "");
  CHECK(page.status() == 200);
  CHECK(std::filesystem::is_directory(dir.file("state") + "/w2/uploads/" + session));
  CHECK_FALSE(std::filesystem::exists(dir.file("state") + "/w1/uploads/" + session));
  AppReply status = user.get("/session_status");
  CHECK(status.text("session_id") == session);
  CHECK(status.flag("analysis_complete"));
  AppReply files = user.get("/export/list/" + session);
  CHECK(files.number("count").value_or(0) >= 5);
}
