// The colours of the maps and plots, chosen once so every page reads the same way.
//
// The sequential ramp runs from pale yellow to dark red through the stops of ColorBrewer's
// 5-class YlOrRd scheme, which stays ordered for the common forms of colour blindness because
// lightness falls monotonically along it. The risk categories take the ramp's pale-yellow start
// and orange middle and a red darker than its end, so a category map and a score map of the
// same wards look alike and High Risk still stands out.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backend/analysis/ranking.h"

namespace stickyproxy::backend {

inline constexpr std::string_view kNoDataColor = "#d9d9d9";

// The ramp's colour at `t` (0 = lowest, 1 = highest), "#rrggbb", interpolated linearly in sRGB
// between the fixed stops. `t` is clamped to [0, 1]; NaN gives kNoDataColor.
std::string sequentialColor(double t);

// The ramp as a CSS linear-gradient() running to the right, for legends.
std::string sequentialGradientCss();

// High Risk dark red, Medium Risk orange, Low Risk pale yellow; no category gives kNoDataColor.
std::string_view riskCategoryColor(std::optional<RiskCategory> category);

}  // namespace stickyproxy::backend
