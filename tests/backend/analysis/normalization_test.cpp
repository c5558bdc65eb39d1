#include "backend/analysis/normalization.h"

#include <catch2/catch.hpp>

#include <vector>

namespace stickyproxy::backend {
namespace {

std::vector<double> normalized(const std::vector<double>& values, Direction direction) {
  auto result = normalizeColumn("x", values, direction);
  REQUIRE(result.ok());
  return std::move(result).value();
}

TEST_CASE("direction is inverse for distance, elevation, housing and urban", "[analysis]") {
  CHECK(directionOf("distance_to_water") == Direction::kInverse);
  CHECK(directionOf("elevation") == Direction::kInverse);
  CHECK(directionOf("housing_quality") == Direction::kInverse);
  CHECK(directionOf("urbanPercentage") == Direction::kInverse);
  CHECK(directionOf("Mean_Elevation_M") == Direction::kInverse);
  CHECK(directionOf("URBAN") == Direction::kInverse);
  CHECK(directionOf("pfpr") == Direction::kDirect);
  CHECK(directionOf("u5_tpr_rdt") == Direction::kDirect);
  CHECK(directionOf("mean_rainfall") == Direction::kDirect);
  CHECK(directionOf("mean_EVI") == Direction::kDirect);
  CHECK(directionLabel(Direction::kDirect) == "direct");
  CHECK(directionLabel(Direction::kInverse) == "inverse");
}

TEST_CASE("a direct variable is min-max normalised to 0..1", "[analysis]") {
  CHECK(normalized({2, 4, 6}, Direction::kDirect) == std::vector<double>{0.0, 0.5, 1.0});
  CHECK(normalized({-3, 1, 5, -1}, Direction::kDirect) ==
        std::vector<double>{0.0, 0.5, 1.0, 0.25});
}

TEST_CASE("an inverse variable is normalised through 1/(x + 1e-10)", "[analysis]") {
  // 1/x = 1, 1/3, 2: min 1/3, range 5/3, so (1 - 1/3) / (5/3) = 0.4.
  const auto values = normalized({1, 3, 0.5}, Direction::kInverse);
  REQUIRE(values.size() == 3);
  CHECK(values[0] == Approx(0.4));
  CHECK(values[1] == 0.0);
  CHECK(values[2] == 1.0);

  // Not 1 - (x - min)/range: the transform is non-linear. Linear flipping would give 0.5.
  const auto curved = normalized({1, 2, 3}, Direction::kInverse);
  CHECK(curved[0] == 1.0);
  CHECK(curved[1] == Approx(0.25));  // (1/2 - 1/3) / (1 - 1/3)
  CHECK(curved[2] == 0.0);
}

TEST_CASE("an inverse variable of 0 becomes the largest value, not infinity", "[analysis]") {
  const auto values = normalized({0, 1, 4}, Direction::kInverse);
  CHECK(values[0] == 1.0);
  CHECK(values[1] == Approx(0.75 / 1e10).margin(1e-15));  // (1 - 0.25) / (1e10 - 0.25)
  CHECK(values[2] == 0.0);
}

TEST_CASE("a constant column normalises to all zeros in either direction", "[analysis]") {
  CHECK(normalized({3, 3, 3}, Direction::kDirect) == std::vector<double>{0, 0, 0});
  CHECK(normalized({3, 3, 3}, Direction::kInverse) == std::vector<double>{0, 0, 0});
  CHECK(normalized({7}, Direction::kDirect) == std::vector<double>{0});
}

TEST_CASE("values the transform cannot handle are errors, not NaN", "[analysis]") {
  const auto pole = normalizeColumn("elevation", {-1e-10, 1.0}, Direction::kInverse);
  REQUIRE_FALSE(pole.ok());
  CHECK(pole.error() == "Variable 'elevation' has a value for which 1/(x + 1e-10) is undefined");

  const auto wide = normalizeColumn("pfpr", {-1e308, 1e308}, Direction::kDirect);
  REQUIRE_FALSE(wide.ok());
  CHECK(wide.error() == "Variable 'pfpr' spans too wide a range to normalise");
}

}  // namespace
}  // namespace stickyproxy::backend
