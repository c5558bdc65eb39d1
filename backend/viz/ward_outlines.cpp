#include "backend/viz/ward_outlines.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string_view>

#include "backend/viz/html_text.h"

namespace stickyproxy::backend {
namespace {

struct Tenths {
  int64_t x = 0;
  int64_t y = 0;
  bool operator==(const Tenths&) const = default;
};

// Maps source coordinates to viewBox units.
struct Transform {
  double min_x = 0;
  double max_y = 0;
  double x_factor = 1;  // cos(middle latitude) for geographic layers, else 1
  double scale = 1;
  double offset_x = 0;
  int64_t grid = 1;  // in tenths

  Tenths apply(const Point& point) const {
    return {toTenths(((point.x - min_x) * x_factor) * scale + offset_x), toTenths((max_y - point.y) * scale)};
  }

  int64_t toTenths(double units) const {
    const double tenths = std::round(units * 10 / static_cast<double>(grid)) * static_cast<double>(grid);
    // Coordinates land in [0, width] x [0, height] by construction; the guard keeps a layer with
    // absurd bounds (a span that overflows to infinity) from reaching llround's undefined range.
    if (!std::isfinite(tenths) || std::fabs(tenths) > 1e15) return 0;
    return static_cast<int64_t>(tenths);
  }
};

bool looksGeographic(const BoundingBox& box) {
  return box.min_x >= -180 && box.max_x <= 180 && box.min_y >= -90 && box.max_y <= 90;
}

bool namesProjectedSystem(std::string_view wkt) {
  return wkt.starts_with("PROJCS") || wkt.starts_with("PROJCRS");
}

// Whether `b` lies on the segment from `a` to `c` strictly between them, in exact integer maths:
// the three are collinear and the walk a -> b -> c does not turn back.
bool liesBetween(const Tenths& a, const Tenths& b, const Tenths& c) {
  const int64_t abx = b.x - a.x;
  const int64_t aby = b.y - a.y;
  const int64_t bcx = c.x - b.x;
  const int64_t bcy = c.y - b.y;
  return abx * bcy == aby * bcx && abx * bcx + aby * bcy > 0;
}

void appendRing(std::string* out, const std::vector<Point>& ring, const Transform& transform,
                std::vector<Tenths>* scratch) {
  std::vector<Tenths>& points = *scratch;
  points.clear();
  for (const Point& point : ring) {
    const Tenths rounded = transform.apply(point);
    if (!points.empty() && points.back() == rounded) continue;
    // A straight run becomes one step: the previous point goes when it sits between its own
    // predecessor and this one.
    if (points.size() >= 2 && liesBetween(points[points.size() - 2], points.back(), rounded)) {
      points.back() = rounded;
      continue;
    }
    points.push_back(rounded);
  }
  while (points.size() > 1 && points.back() == points.front()) points.pop_back();
  if (points.size() >= 3 && liesBetween(points[points.size() - 2], points.back(), points.front())) {
    points.pop_back();
  }
  if (points.size() < 3) return;

  *out += 'M';
  appendTenths(out, points[0].x);
  *out += ' ';
  appendTenths(out, points[0].y);
  *out += 'l';
  bool first_number = true;
  auto number = [out, &first_number](int64_t value) {
    // A minus sign separates numbers by itself; otherwise a space is needed.
    if (!first_number && value >= 0) *out += ' ';
    first_number = false;
    appendTenths(out, value);
  };
  for (size_t i = 1; i < points.size(); ++i) {
    number(points[i].x - points[i - 1].x);
    number(points[i].y - points[i - 1].y);
  }
  *out += 'Z';
}

}  // namespace

WardOutlines WardOutlines::project(const ShapefileLayer& layer, double width, int grid_tenths) {
  const bool geographic = looksGeographic(layer.bounds()) && !namesProjectedSystem(layer.projection());
  return project(layer.wards(), geographic, width, grid_tenths);
}

WardOutlines WardOutlines::project(const std::vector<WardShape>& shapes, bool geographic, double width,
                                   int grid_tenths) {
  WardOutlines outlines;
  if (!(width > 0) || !std::isfinite(width)) width = kDefaultWidth;
  outlines.width_ = width;

  BoundingBox box;
  bool have_box = false;
  for (const WardShape& shape : shapes) {
    for (const auto& ring : shape.rings) {
      for (const Point& point : ring) {
        if (!have_box) {
          box = {point.x, point.y, point.x, point.y};
          have_box = true;
        }
        box.min_x = std::min(box.min_x, point.x);
        box.min_y = std::min(box.min_y, point.y);
        box.max_x = std::max(box.max_x, point.x);
        box.max_y = std::max(box.max_y, point.y);
      }
    }
  }

  Transform transform;
  transform.min_x = box.min_x;
  transform.max_y = box.max_y;
  if (geographic) {
    // Equirectangular: a degree of longitude is cos(latitude) times as long as a degree of
    // latitude. One factor for the whole layer, taken at its middle latitude, is exact enough for
    // a state-sized area and keeps shared edges identical between neighbours.
    const double middle = (box.min_y + box.max_y) / 2 * std::numbers::pi / 180;
    transform.x_factor = std::max(std::cos(middle), 1e-6);
  }
  const double span_x = (box.max_x - box.min_x) * transform.x_factor;
  const double span_y = box.max_y - box.min_y;
  const double inf = std::numeric_limits<double>::infinity();
  const double fit_width = span_x > 0 ? width / span_x : inf;
  const double fit_height = span_y > 0 ? width * kMaxAspect / span_y : inf;
  double scale = std::min(fit_width, fit_height);
  if (!std::isfinite(scale) || !(scale > 0)) scale = 1;  // a single point, or overflowing bounds
  transform.scale = scale;
  transform.offset_x = std::max((width - span_x * scale) / 2, 0.0);
  outlines.height_ = std::max(span_y * scale, 1.0);
  if (!std::isfinite(outlines.height_)) outlines.height_ = width;

  Transform fine = transform;
  transform.grid = std::max(grid_tenths, 1);
  outlines.paths_.resize(shapes.size());
  std::vector<Tenths> scratch;
  for (size_t i = 0; i < shapes.size(); ++i) {
    for (const auto& ring : shapes[i].rings) appendRing(&outlines.paths_[i], ring, transform, &scratch);
    if (outlines.paths_[i].empty() && transform.grid > 1) {
      for (const auto& ring : shapes[i].rings) appendRing(&outlines.paths_[i], ring, fine, &scratch);
    }
  }
  return outlines;
}

const std::string& WardOutlines::path(size_t shape) const {
  static const std::string kEmpty;
  return shape < paths_.size() ? paths_[shape] : kEmpty;
}

size_t WardOutlines::pathBytes() const {
  size_t bytes = 0;
  for (const std::string& path : paths_) bytes += path.size();
  return bytes;
}

}  // namespace stickyproxy::backend
