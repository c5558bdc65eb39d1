#include "backend/data/data_status.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace stickyproxy::backend {
namespace {

Expected<int> parsedDigit(char c) {
  if (c == 'x') return AnalysisError{"Unknown variable 'x'"};
  if (c < '0' || c > '9') return DataStatus::error(DataError::kMalformedCsv, "Not a digit");
  return c - '0';
}

DataStatus checkedDigit(char c) {
  if (c == 'x') return AnalysisError{"Unknown variable 'x'"};
  auto digit = parsedDigit(c);
  if (!digit) return digit.status();
  return DataStatus();
}

TEST_CASE("a default status is success with no message", "[data]") {
  const DataStatus status;
  CHECK(status.ok());
  CHECK(status.code() == DataError::kOk);
  CHECK(status.message().empty());
  const DataStatus failed = DataStatus::error(DataError::kIo, "Cannot write x");
  CHECK_FALSE(failed.ok());
  CHECK(failed.code() == DataError::kIo);
  CHECK(failed.message() == "Cannot write x");
}

TEST_CASE("an Expected holds the value, and a success status beside it", "[data]") {
  const Expected<int> seven = parsedDigit('7');
  REQUIRE(seven.ok());
  CHECK(static_cast<bool>(seven));
  CHECK(seven.value() == 7);
  CHECK(seven.status().ok());
  CHECK(seven.error().empty());

  Expected<std::unique_ptr<int>> owned = std::make_unique<int>(3);
  std::unique_ptr<int> taken = std::move(owned).value();
  CHECK(*taken == 3);
}

TEST_CASE("an Expected keeps the code and message of its failure", "[data]") {
  const Expected<int> bad = parsedDigit('?');
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == DataError::kMalformedCsv);
  CHECK(bad.error() == "Not a digit");
  CHECK(checkedDigit('?').code() == DataError::kMalformedCsv);
  CHECK(checkedDigit('5').ok());
}

TEST_CASE("valueIfOk gives the value of a success and nothing of a failure", "[data]") {
  Expected<int> seven = parsedDigit('7');
  REQUIRE(seven.valueIfOk() != nullptr);
  CHECK(*seven.valueIfOk() == 7);
  *seven.valueIfOk() = 8;
  CHECK(seven.value() == 8);
  const Expected<int> bad = parsedDigit('?');
  CHECK(bad.valueIfOk() == nullptr);
  CHECK(bad.status().code() == DataError::kMalformedCsv);
}

TEST_CASE("reading the value of a failure stops the process even in a release build", "[data]") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGABRT, SIG_DFL);  // not Catch's handler, which would report the child as a failed test
    const Expected<int> bad = parsedDigit('?');
    const int read = bad.value();  // never returns
    ::_exit(read == 0 ? 3 : 4);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("AnalysisError is a kBadAnalysisInput status", "[data]") {
  const Expected<int> unknown = parsedDigit('x');
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == DataError::kBadAnalysisInput);
  CHECK(unknown.error() == "Unknown variable 'x'");

  const DataStatus status = checkedDigit('x');
  CHECK(status.code() == DataError::kBadAnalysisInput);
  CHECK(status.message() == "Unknown variable 'x'");

  const AnalysisError error{"Column 'pfpr' has no values to impute from"};
  const DataStatus converted = error;
  CHECK(converted.message() == error.message);
  const Expected<std::vector<double>> failed = error;
  CHECK(failed.error() == error.message);
}

}  // namespace
}  // namespace stickyproxy::backend
