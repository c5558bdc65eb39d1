#include "backend/viz/palette.h"

#include <catch2/catch.hpp>
#include <limits>

namespace stickyproxy::backend {
namespace {

TEST_CASE("the sequential ramp runs through its stops from pale yellow to dark red", "[viz]") {
  CHECK(sequentialColor(0) == "#ffffb2");
  CHECK(sequentialColor(0.25) == "#fecc5c");
  CHECK(sequentialColor(0.5) == "#fd8d3c");
  CHECK(sequentialColor(0.75) == "#f03b20");
  CHECK(sequentialColor(1) == "#bd0026");
  // Halfway between the first two stops: (ff+fe)/2, (ff+cc)/2, (b2+5c)/2, rounded half away from zero.
  CHECK(sequentialColor(0.125) == "#ffe687");
  CHECK(sequentialColor(-3) == "#ffffb2");
  CHECK(sequentialColor(7) == "#bd0026");
  CHECK(sequentialColor(std::numeric_limits<double>::quiet_NaN()) == kNoDataColor);
  CHECK(sequentialGradientCss() == "linear-gradient(to right,#ffffb2,#fecc5c,#fd8d3c,#f03b20,#bd0026)");
}

TEST_CASE("risk categories are dark red, orange and pale yellow; none is grey", "[viz]") {
  CHECK(riskCategoryColor(RiskCategory::kHigh) == "#a50026");
  CHECK(riskCategoryColor(RiskCategory::kMedium) == "#fd8d3c");
  CHECK(riskCategoryColor(RiskCategory::kLow) == "#ffffb2");
  CHECK(riskCategoryColor(std::nullopt) == "#d9d9d9");
}

}  // namespace
}  // namespace stickyproxy::backend
