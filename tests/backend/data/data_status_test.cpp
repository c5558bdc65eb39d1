#include "backend/data/data_status.h"

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
