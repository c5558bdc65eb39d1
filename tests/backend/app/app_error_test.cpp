// The one map from failure kinds to HTTP statuses, and the answers built on it: a client reads
// the plain message; a server-side detail (a path, the system's reason) stays in the log.
#include "backend/app/app_error.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "backend/app/app_context.h"
#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

using namespace stickyproxy::backend;

namespace {

using stickyproxy::testing::TempDir;
using stickyproxy::testing::TestLoop;

std::string bodyOf(const Answer& answer) { return picojson::value(answer.body).serialize(); }

}  // namespace

TEST_CASE("each failure kind has its one HTTP status", "[app]") {
  CHECK(httpStatusOf(ErrorKind::kBadInput) == 400);
  CHECK(httpStatusOf(ErrorKind::kNotFound) == 404);
  CHECK(httpStatusOf(ErrorKind::kConflict) == 409);
  CHECK(httpStatusOf(ErrorKind::kTooLarge) == 413);
  CHECK(httpStatusOf(ErrorKind::kServerIo) == 500);
}

TEST_CASE("a data-layer failure is the server's for I/O, a limit for caps, and bad input otherwise", "[app]") {
  CHECK(errorKindOf(DataError::kIo) == ErrorKind::kServerIo);
  CHECK(errorKindOf(DataError::kTooLarge) == ErrorKind::kTooLarge);
  for (DataError code : {DataError::kNotUtf8, DataError::kEmptyFile, DataError::kHeaderOnly, DataError::kMalformedCsv,
                         DataError::kRaggedRow, DataError::kDuplicateColumn, DataError::kMissingColumns,
                         DataError::kCorruptZip, DataError::kUnsafeZipEntry, DataError::kMissingShapefilePart,
                         DataError::kNotPolygons, DataError::kCorruptShapefile, DataError::kBadAnalysisInput}) {
    INFO("DataError " << static_cast<int>(code));
    CHECK(errorKindOf(code) == ErrorKind::kBadInput);
    CHECK(httpStatusOf(errorKindOf(code)) == 400);
  }
}

TEST_CASE("an error answer carries its kind's status and the message alone", "[app]") {
  for (ErrorKind kind : {ErrorKind::kBadInput, ErrorKind::kNotFound, ErrorKind::kConflict, ErrorKind::kTooLarge,
                         ErrorKind::kServerIo}) {
    Answer answer = Answer::error(kind, "Plain words");
    CHECK(answer.http_status == httpStatusOf(kind));
    CHECK_FALSE(answer.ok());
    CHECK(answer.message() == "Plain words");
    CHECK(bodyOf(answer) == R"({"message":"Plain words","status":"error"})");
  }
}

TEST_CASE("a server failure's detail reaches the log and its counter, never the answer", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    BackendOptions options;
    options.state_dir = state.path();
    AppContext app(loop.get(), options);
    const std::string detail = "cannot create " + state.path() + "/w0/staging/x: No space left on device";

    Answer io = app.serverFailure("Could not store the upload", detail);
    CHECK(io.http_status == 500);
    CHECK(io.message() == "Could not store the upload");
    CHECK(bodyOf(io).find(state.path()) == std::string::npos);
    CHECK(app.serverFailures() == 1);

    Answer same = app.failure(AppError{ErrorKind::kServerIo, "Could not assemble the upload", detail});
    CHECK(same.http_status == 500);
    CHECK(bodyOf(same).find(state.path()) == std::string::npos);
    CHECK(app.serverFailures() == 2);

    // The client's own problems are answered as they are, and are not server failures.
    Answer missing = app.failure(AppError{ErrorKind::kBadInput, "Missing chunk 0 for csv", {}});
    CHECK(missing.http_status == 400);
    CHECK(missing.message() == "Missing chunk 0 for csv");
    CHECK(app.failure(AppError{ErrorKind::kTooLarge, "File too large", {}}).http_status == 413);
    CHECK(app.serverFailures() == 2);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a data-layer failure is answered by its code, an I/O one without its text", "[app]") {
  TestLoop loop;
  TempDir state;
  {
    BackendOptions options;
    options.state_dir = state.path();
    AppContext app(loop.get(), options);

    Answer bad = app.dataFailure(DataStatus::error(DataError::kRaggedRow, "Row 3 has 4 fields; the header has 5"),
                                 "bad_upload", "Could not store the upload");
    CHECK(bad.http_status == 400);
    CHECK(bad.message() == "Row 3 has 4 fields; the header has 5");
    CHECK(app.rejections().at("bad_upload") == 1);

    Answer big = app.dataFailure(DataStatus::error(DataError::kTooLarge, "The CSV file is larger than 64 MB"),
                                 "bad_upload", "Could not store the upload");
    CHECK(big.http_status == 413);
    CHECK(big.message() == "The CSV file is larger than 64 MB");

    Answer io = app.dataFailure(DataStatus::error(DataError::kIo, "Cannot write " + state.path() + "/r.zip: EIO"),
                                "bad_upload", "Could not store the upload");
    CHECK(io.http_status == 500);
    CHECK(io.message() == "Could not store the upload");
    CHECK(bodyOf(io).find(state.path()) == std::string::npos);
    CHECK(app.serverFailures() == 1);
    CHECK(app.rejections().at("bad_upload") == 2);
  }
  CHECK(loop.close() == 0);
}
