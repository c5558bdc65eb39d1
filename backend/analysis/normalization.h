// Putting every variable on a 0-1 scale where higher means more malaria risk.
#pragma once

#include <string_view>
#include <vector>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

// Whether a larger raw value means more risk (direct) or less (inverse: the farther from water,
// the higher, the better housed, the more urban, the lower the risk).
enum class Direction { kDirect, kInverse };

// "direct" or "inverse", as written to the result files.
std::string_view directionLabel(Direction direction);

// Inverse when `variable` contains, ignoring case, "distance", "elevation", "housing" or
// "urban"; direct otherwise.
Direction directionOf(std::string_view variable);

// Keeps 1/(x + kInverseEpsilon) finite at x = 0.
inline constexpr double kInverseEpsilon = 1e-10;

// Min-max normalises `values` to [0, 1]: (v - min) / (max - min), where v is the value itself
// for a direct variable and 1 / (value + kInverseEpsilon) for an inverse one. A constant column
// (max == min) carries no ranking information and normalises to all 0, so it neither raises nor
// lowers any ward's composite score relative to the others.
// `name` is only used in error messages. Fails when the inverse transform is not finite
// (a value of exactly -kInverseEpsilon) or the range overflows a double.
Expected<std::vector<double>> normalizeColumn(std::string_view name,
                                              const std::vector<double>& values,
                                              Direction direction);

}  // namespace stickyproxy::backend
