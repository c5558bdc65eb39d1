#include "backend/analysis/ward_table.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

namespace stickyproxy::backend {
namespace {

WardTable twoWards() {
  WardTable table;
  table.keys = {"K1", "K2"};
  table.names = {"One", "Two"};
  table.columns = {{"pfpr", {0.1, std::nullopt}}, {"mean_rainfall", {10.0, 20.0}}};
  table.adjacency = {{1}, {0}};
  return table;
}

std::string problem(const WardTable& table) {
  const DataStatus status = validateWardTable(table);
  CHECK(status.code() == (status.ok() ? DataError::kOk : DataError::kBadAnalysisInput));
  return status.message();
}

TEST_CASE("a well-formed ward table passes validation", "[analysis]") {
  CHECK(problem(twoWards()).empty());
  WardTable no_shapes = twoWards();
  no_shapes.adjacency.clear();
  CHECK(problem(no_shapes).empty());
}

TEST_CASE("findColumn matches the exact column name only", "[analysis]") {
  const WardTable table = twoWards();
  REQUIRE(table.findColumn("pfpr") != nullptr);
  CHECK(table.findColumn("pfpr")->name == "pfpr");
  CHECK(table.findColumn("PFPR") == nullptr);
  CHECK(table.findColumn("missing") == nullptr);
}

TEST_CASE("malformed ward tables are reported with what is wrong", "[analysis]") {
  CHECK(problem(WardTable{}) == "The ward data has no wards");

  WardTable names = twoWards();
  names.names.pop_back();
  CHECK(problem(names) == "The ward data has 2 ward keys but 1 ward names");

  WardTable duplicate_key = twoWards();
  duplicate_key.keys[1] = "K1";
  CHECK(problem(duplicate_key) == "Duplicate ward key 'K1'");

  WardTable empty_key = twoWards();
  empty_key.keys[0].clear();
  CHECK(problem(empty_key) == "A ward has an empty key");

  WardTable duplicate_column = twoWards();
  duplicate_column.columns[1].name = "pfpr";
  CHECK(problem(duplicate_column) == "Duplicate column 'pfpr'");

  WardTable short_column = twoWards();
  short_column.columns[1].values.pop_back();
  CHECK(problem(short_column) == "Column 'mean_rainfall' has 1 values for 2 wards");

  WardTable nan = twoWards();
  nan.columns[1].values[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK(problem(nan) == "Column 'mean_rainfall' has a non-finite value for ward 'K2'");

  WardTable infinite = twoWards();
  infinite.columns[0].values[0] = std::numeric_limits<double>::infinity();
  CHECK(problem(infinite) == "Column 'pfpr' has a non-finite value for ward 'K1'");

  WardTable short_adjacency = twoWards();
  short_adjacency.adjacency.pop_back();
  CHECK(problem(short_adjacency) == "The adjacency list has 1 entries for 2 wards");

  WardTable bad_neighbour = twoWards();
  bad_neighbour.adjacency[1] = {0, 7};
  CHECK(problem(bad_neighbour) == "Ward 'K2' has an out-of-range neighbour 7");
}

}  // namespace
}  // namespace stickyproxy::backend
