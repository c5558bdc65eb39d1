#include "backend/viz/palette.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace stickyproxy::backend {
namespace {

struct Rgb {
  int r;
  int g;
  int b;
};

// ColorBrewer YlOrRd, 5 classes.
constexpr std::array<Rgb, 5> kSequentialStops = {{
    {0xff, 0xff, 0xb2},
    {0xfe, 0xcc, 0x5c},
    {0xfd, 0x8d, 0x3c},
    {0xf0, 0x3b, 0x20},
    {0xbd, 0x00, 0x26},
}};

std::string hexColor(const Rgb& color) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "#";
  for (int channel : {color.r, color.g, color.b}) {
    text += kHex[(channel >> 4) & 0xF];
    text += kHex[channel & 0xF];
  }
  return text;
}

}  // namespace

std::string sequentialColor(double t) {
  if (std::isnan(t)) return std::string(kNoDataColor);
  t = std::fmin(std::fmax(t, 0.0), 1.0);
  const double position = t * static_cast<double>(kSequentialStops.size() - 1);
  const auto lower = std::min(static_cast<size_t>(position), kSequentialStops.size() - 2);
  const double fraction = position - static_cast<double>(lower);
  const Rgb& a = kSequentialStops[lower];
  const Rgb& b = kSequentialStops[lower + 1];
  auto mix = [fraction](int from, int to) {
    return static_cast<int>(std::lround(from + (to - from) * fraction));
  };
  return hexColor({mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)});
}

std::string sequentialGradientCss() {
  std::string css = "linear-gradient(to right";
  for (const Rgb& stop : kSequentialStops) css += "," + hexColor(stop);
  css += ")";
  return css;
}

std::string_view riskCategoryColor(std::optional<RiskCategory> category) {
  if (!category) return kNoDataColor;
  switch (*category) {
    case RiskCategory::kHigh:
      return "#a50026";
    case RiskCategory::kMedium:
      return "#fd8d3c";
    case RiskCategory::kLow:
      return "#ffffb2";
  }
  return kNoDataColor;
}

}  // namespace stickyproxy::backend
