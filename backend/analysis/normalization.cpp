#include "backend/analysis/normalization.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>

namespace stickyproxy::backend {
namespace {

bool containsIgnoringCase(std::string_view haystack, std::string_view needle) {
  const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [&](char a, char b) { return lower(a) == lower(b); });
  return it != haystack.end();
}

}  // namespace

std::string_view directionLabel(Direction direction) {
  return direction == Direction::kInverse ? "inverse" : "direct";
}

Direction directionOf(std::string_view variable) {
  static constexpr std::array<std::string_view, 4> kInverseMarkers = {"distance", "elevation",
                                                                      "housing", "urban"};
  for (std::string_view marker : kInverseMarkers) {
    if (containsIgnoringCase(variable, marker)) return Direction::kInverse;
  }
  return Direction::kDirect;
}

Expected<std::vector<double>> normalizeColumn(std::string_view name,
                                              const std::vector<double>& values,
                                              Direction direction) {
  std::vector<double> out(values);
  if (direction == Direction::kInverse) {
    for (double& v : out) {
      v = 1.0 / (v + kInverseEpsilon);
      if (!std::isfinite(v)) {
        return AnalysisError{"Variable '" + std::string(name) +
                             "' has a value for which 1/(x + 1e-10) is undefined"};
      }
    }
  }
  if (out.empty()) return out;
  const auto [min_it, max_it] = std::minmax_element(out.begin(), out.end());
  const double min = *min_it;
  const double range = *max_it - min;
  if (!std::isfinite(range)) {
    return AnalysisError{"Variable '" + std::string(name) +
                         "' spans too wide a range to normalise"};
  }
  for (double& v : out) v = range > 0 ? (v - min) / range : 0.0;
  return out;
}

}  // namespace stickyproxy::backend
