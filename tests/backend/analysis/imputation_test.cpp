#include "backend/analysis/imputation.h"

#include <catch2/catch.hpp>

#include <optional>
#include <vector>

namespace stickyproxy::backend {
namespace {

using Adjacency = std::vector<std::vector<size_t>>;

TEST_CASE("a missing value takes the mean of the neighbours that have one", "[analysis]") {
  // A chain 0 - 1 - 2 - 3.
  const NumericColumn column{"pfpr", {1.0, std::nullopt, 5.0, std::nullopt}};
  const Adjacency chain = {{1}, {0, 2}, {1, 3}, {2}};
  const auto imputed = imputeColumn(column, chain);
  REQUIRE(imputed.ok());
  CHECK(imputed.value().name == "pfpr");
  CHECK(imputed.value().values == std::vector<double>{1.0, 3.0, 5.0, 5.0});
  CHECK(imputed.value().from_neighbours == 2);
  CHECK(imputed.value().from_column_mean == 0);
}

TEST_CASE("only observed neighbour values count, never ones imputed before", "[analysis]") {
  // Ward 1's neighbours are ward 0 (missing) and ward 2 (8): its value is 8, not a mean that
  // includes whatever ward 0 received.
  const NumericColumn column{"x", {std::nullopt, std::nullopt, 8.0, 2.0}};
  const Adjacency chain = {{1}, {0, 2}, {1, 3}, {2}};
  const auto imputed = imputeColumn(column, chain);
  REQUIRE(imputed.ok());
  // Ward 0's only neighbour is missing too: column mean (8 + 2) / 2.
  CHECK(imputed.value().values == std::vector<double>{5.0, 8.0, 8.0, 2.0});
  CHECK(imputed.value().from_neighbours == 1);
  CHECK(imputed.value().from_column_mean == 1);
}

TEST_CASE("without neighbours a missing value takes the column mean", "[analysis]") {
  const NumericColumn column{"x", {2.0, std::nullopt, 4.0, 9.0}};
  SECTION("no adjacency at all") {
    const auto imputed = imputeColumn(column, {});
    REQUIRE(imputed.ok());
    CHECK(imputed.value().values == std::vector<double>{2.0, 5.0, 4.0, 9.0});
    CHECK(imputed.value().from_column_mean == 1);
  }
  SECTION("an island ward") {
    const Adjacency island = {{2}, {}, {0}, {}};
    const auto imputed = imputeColumn(column, island);
    REQUIRE(imputed.ok());
    CHECK(imputed.value().values[1] == 5.0);
    CHECK(imputed.value().from_column_mean == 1);
  }
  SECTION("a ward listed as its own neighbour") {
    const Adjacency self = {{}, {1}, {}, {}};
    const auto imputed = imputeColumn(column, self);
    REQUIRE(imputed.ok());
    CHECK(imputed.value().values[1] == 5.0);
  }
}

TEST_CASE("a complete column is returned unchanged", "[analysis]") {
  const NumericColumn column{"x", {0.5, -1.0, 3.25}};
  const auto imputed = imputeColumn(column, {{1}, {0, 2}, {1}});
  REQUIRE(imputed.ok());
  CHECK(imputed.value().values == std::vector<double>{0.5, -1.0, 3.25});
  CHECK(imputed.value().from_neighbours == 0);
  CHECK(imputed.value().from_column_mean == 0);
}

TEST_CASE("a column without any value cannot be imputed", "[analysis]") {
  const NumericColumn column{"mean_EVI", {std::nullopt, std::nullopt}};
  const auto imputed = imputeColumn(column, {{1}, {0}});
  REQUIRE_FALSE(imputed.ok());
  CHECK(imputed.error() == "Column 'mean_EVI' has no values to impute from");
}

}  // namespace
}  // namespace stickyproxy::backend
