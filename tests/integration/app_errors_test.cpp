// Issue 10 item 7, "the bundled app's errors", through real sockets: a real stickyproxy-backend
// worker answers what the user sent wrong with its 4xx and a plain message, and what went wrong
// on its own disk with 500 and a plain message, the path only in its log; and it keeps serving.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "tests/integration/app_client.h"
#include "tests/integration/harness.h"
#include "tests/integration/ward_dataset.h"

using namespace stickyproxy::integration;
namespace fs = std::filesystem;

namespace {

// The error answer as the app promises it, with no server path in it.
void checkPlainError(const AppReply& reply, int status, const std::string& state_dir) {
  INFO(reply.describe());
  CHECK(reply.status() == status);
  CHECK(reply.isJsonError());
  CHECK(reply.http.body.find(state_dir) == std::string::npos);
  CHECK(reply.http.body.find("/uploads/") == std::string::npos);
  CHECK(reply.http.body.find("/staging") == std::string::npos);
}

}  // namespace

TEST_CASE("the app answers bad input 4xx and its own disk's failures 500 with no server path in either",
          "[integration][app]") {
  TempDir dir("stickyproxy-app-errors");
  const WardDataset data = generateWardDataset(dir.path(), 5, 30);
  WorkerUnderTest worker(dir, "stickyproxy-backend", "w1");
  AppClient user(worker.client());
  const std::string state = dir.file("state");

  // What the user sent wrong: a CSV without WardName, chunks never sent.
  std::string no_ward_name = data.csv;
  no_ward_name.replace(no_ward_name.find("WardName"), 8, "WardLabel");
  AppReply bad_csv = user.uploadBothFiles("wards.csv", no_ward_name, "wards.zip", data.zip);
  checkPlainError(bad_csv, 400, state);
  CHECK(bad_csv.text("message").find("WardName") != std::string::npos);
  AppReply missing = user.finalizeUpload("never-sent-id", "wards.csv", "", 2, 0);
  checkPlainError(missing, 400, state);
  CHECK(missing.text("message") == "Missing chunk 0 for csv");

  // The worker's staging area turns into a file: nothing the user can fix.
  const std::string staging = state + "/w1/staging";
  fs::remove_all(staging);
  writeFile(staging, "not a directory");
  AppReply broken = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
  checkPlainError(broken, 500, state);
  CHECK(broken.text("message") == "Could not start the upload");
  AppReply health = user.get("/system-health");
  CHECK(health.number("server_failures") == 1.0);
  CHECK(health.number("rejected_requests.missing_chunk") == 1.0);
  // The operator finds the path in the worker's log.
  CHECK(worker.process().logText().find("server failure: Could not start the upload: cannot create " + staging) !=
        std::string::npos);

  // Repaired, the same worker takes the same upload, analyses it, and lists the results.
  fs::remove(staging);
  fs::create_directory(staging);
  AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards.zip", data.zip);
  INFO(upload.describe());
  REQUIRE(upload.status() == 200);
  AppReply analysis = user.postJson("/run_analysis", "{}");
  INFO(analysis.describe());
  REQUIRE(analysis.status() == 200);
  const std::string session = user.appSession();
  CHECK(user.get("/export/list/" + session).status() == 200);

  // A results directory that cannot be listed is the server's failure, answered, not a crash.
  const std::string results = state + "/w1/uploads/" + session + "/results";
  fs::remove_all(results);
  writeFile(results, "not a directory");
  AppReply list = user.get("/export/list/" + session);
  checkPlainError(list, 500, state);
  CHECK(list.text("message") == "Could not list the results");
  CHECK(user.get("/ping").status() == 200);
  CHECK(user.get("/system-health").number("server_failures") == 2.0);
}
