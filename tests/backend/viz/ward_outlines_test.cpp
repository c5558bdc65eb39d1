#include "backend/viz/ward_outlines.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/data/synthetic_data.h"
#include "tests/backend/viz/viz_test_support.h"

namespace stickyproxy::backend {
namespace {

using stickyproxy::testing::TempDir;
using viz_test::rectangle;
using viz_test::shape;

// The absolute points of a path made of "M x y l dx dy ... Z" rings, one vector per ring.
std::vector<std::vector<Point>> parsePath(const std::string& path) {
  std::vector<std::vector<Point>> rings;
  const char* at = path.c_str();
  char command = 0;
  std::vector<double> numbers;
  auto flush = [&] {
    if (command == 'M') {
      REQUIRE(numbers.size() == 2);
      rings.push_back({{numbers[0], numbers[1]}});
    } else if (command == 'l') {
      REQUIRE(numbers.size() % 2 == 0);
      for (size_t i = 0; i < numbers.size(); i += 2) {
        const Point last = rings.back().back();
        rings.back().push_back({last.x + numbers[i], last.y + numbers[i + 1]});
      }
    }
    numbers.clear();
  };
  while (*at != '\0') {
    if (*at == 'M' || *at == 'l' || *at == 'Z') {
      flush();
      command = *at++;
    } else if (*at == ' ') {
      ++at;
    } else {
      char* end = nullptr;
      numbers.push_back(std::strtod(at, &end));
      REQUIRE(end != at);
      at = end;
    }
  }
  flush();
  return rings;
}

TEST_CASE("a hand-made square layer maps to exact path text", "[viz]") {
  TempDir dir;
  // Two 10 x 10 squares side by side in metres, and a null shape between them.
  const ShapefileLayer layer =
      viz_test::writeLayer(dir,
                           {shape({rectangle(500000, 1000000, 500010, 1000010)}), shape({}),
                            shape({rectangle(500010, 1000000, 500020, 1000010)})},
                           {"West", "Nowhere", "East"});
  const WardOutlines outlines = WardOutlines::project(layer);
  REQUIRE(outlines.size() == 3);
  CHECK(outlines.width() == 800);
  CHECK(outlines.height() == 400);
  CHECK(outlines.path(0) == "M0 400l0-400 400 0 0 400Z");
  CHECK(outlines.path(1).empty());
  CHECK(outlines.path(2) == "M400 400l0-400 400 0 0 400Z");
  CHECK(outlines.path(3).empty());  // past the end
  CHECK(outlines.pathBytes() == outlines.path(0).size() + outlines.path(2).size());

  const WardOutlines narrow = WardOutlines::project(layer, 100);
  CHECK(narrow.width() == 100);
  CHECK(narrow.height() == 50);
  CHECK(narrow.path(2) == "M50 50l0-50 50 0 0 50Z");
}

TEST_CASE("degrees are corrected by cos(middle latitude), planar units are not", "[viz]") {
  // 2 degrees of longitude by 1 of latitude around 60N: at cos 60 = 0.5 that is a square.
  const std::vector<WardShape> shapes = {shape({rectangle(10, 59.5, 12, 60.5)})};
  const WardOutlines geographic = WardOutlines::project(shapes, true);
  CHECK(geographic.height() == Approx(800));
  CHECK(geographic.path(0) == "M0 800l0-800 800 0 0 800Z");
  const WardOutlines planar = WardOutlines::project(shapes, false);
  CHECK(planar.height() == 400);
  CHECK(planar.path(0) == "M0 400l0-400 800 0 0 400Z");

  // From a layer the bounds decide, unless the .prj names a projected system.
  TempDir dir;
  const ShapefileLayer in_degrees = viz_test::writeLayer(dir, shapes, {"Oslo"});
  CHECK(WardOutlines::project(in_degrees).path(0) == geographic.path(0));
  const ShapefileLayer declared_geographic =
      viz_test::writeLayer(dir, shapes, {"Oslo"}, R"(GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984"]])");
  CHECK(WardOutlines::project(declared_geographic).path(0) == geographic.path(0));
  const ShapefileLayer projected = viz_test::writeLayer(
      dir, shapes, {"Oslo"}, R"(PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984"]])");
  CHECK(WardOutlines::project(projected).path(0) == planar.path(0));
}

TEST_CASE("rounding to a tenth drops repeated points, straight runs and the closing point", "[viz]") {
  // 100 x 100 units drawn 800 wide: one unit is 8 viewBox units.
  const std::vector<WardShape> shapes = {
      shape({{{0, 0},
              {0, 50},  // on the straight left side: dropped
              {0, 100},
              {50, 90},
              {50.006, 90.004},  // within 0.05 of the point before once projected: dropped
              {100, 100},
              {100, 0},
              {0.004, 0},  // rounds onto the first point: dropped with the closing point
              {0, 0}}}),
      // A ward smaller than a tenth collapses and has no path; so does a ring of one point.
      shape({rectangle(20, 20, 20.001, 20.001), {{30, 30}}}),
      shape({rectangle(0, 0, 0.0625, 0.0625)}),
  };
  const WardOutlines outlines = WardOutlines::project(shapes, false);
  CHECK(outlines.height() == 800);
  CHECK(outlines.path(0) == "M0 800l0-800 400 80 400-80 0 800Z");
  CHECK(outlines.path(1).empty());
  // Half units print without a leading zero.
  CHECK(outlines.path(2) == "M0 800l0-.5 .5 0 0 .5Z");
}

TEST_CASE("the display grid snaps to whole units, keeps shared edges shared and small wards drawn", "[viz]") {
  // 100 x 100 units drawn 800 wide: one unit is 8 viewBox units, a wiggle of 0.01 unit is 0.08.
  std::vector<Point> left_ward = {{0, 0}, {0, 100}, {50, 100}};
  std::vector<Point> right_ward = {{50, 100}, {100, 100}, {100, 0}};
  // The shared edge from (50, 100) down to (50, 0), with sub-pixel wiggles, as both wards store it.
  std::vector<Point> edge;
  for (int i = 1; i < 100; ++i) edge.push_back({50 + (i % 2 == 0 ? 0.01 : -0.01), 100.0 - i});
  left_ward.insert(left_ward.end(), edge.begin(), edge.end());
  left_ward.push_back({50, 0});
  left_ward.push_back({0, 0});
  right_ward.push_back({50, 0});
  right_ward.insert(right_ward.end(), edge.rbegin(), edge.rend());
  right_ward.push_back({50, 100});
  const std::vector<WardShape> shapes = {shape({left_ward}), shape({right_ward}),
                                         shape({rectangle(10, 10, 10.05, 10.05)})};

  const WardOutlines fine = WardOutlines::project(shapes, false);
  const WardOutlines display = WardOutlines::project(shapes, false, WardOutlines::kDefaultWidth,
                                                     WardOutlines::kDisplayGrid);
  REQUIRE(display.size() == 3);
  // The wiggles are below a unit: on the display grid the shared edge is one straight step.
  CHECK(display.path(0) == "M0 800l0-800 400 0 0 800Z");
  CHECK(display.path(1) == "M400 0l400 0 0 800-400 0Z");
  CHECK(fine.pathBytes() > 5 * display.pathBytes());
  // Every point of both wards' edge lands on the same grid points.
  for (const auto& ring : parsePath(display.path(0))) {
    for (const Point& point : ring) CHECK(point.x == std::round(point.x));
  }
  // A ward under a unit across would vanish on the coarse grid: it keeps its tenth-grid outline.
  CHECK(display.path(2) == fine.path(2));
  CHECK_FALSE(display.path(2).empty());
}

TEST_CASE("holes become extra subpaths and sliver layers are capped and centred", "[viz]") {
  const std::vector<WardShape> with_hole = {
      shape({rectangle(0, 0, 100, 100), {{25, 25}, {75, 25}, {75, 75}, {25, 75}, {25, 25}}})};
  CHECK(WardOutlines::project(with_hole, false).path(0) ==
        "M0 800l0-800 800 0 0 800ZM200 600l400 0 0-400-400 0Z");

  // 1 unit wide, 100 tall: the height is capped at 4 widths and the drawing centred.
  const WardOutlines sliver = WardOutlines::project({shape({rectangle(0, 0, 1, 100)})}, false);
  CHECK(sliver.height() == 3200);
  CHECK(sliver.path(0) == "M384 3200l0-3200 32 0 0 3200Z");

  const WardOutlines empty = WardOutlines::project(std::vector<WardShape>{}, false);
  CHECK(empty.size() == 0);
  CHECK(empty.width() == 800);
  CHECK(empty.height() == 1);
  CHECK(WardOutlines::project({shape({})}, true).path(0).empty());
  CHECK(WardOutlines::project({shape({rectangle(0, 0, 1, 1)})}, false, -5).width() == 800);
}

TEST_CASE("a synthetic state's wards all project inside the view box, the same every time", "[viz]") {
  TempDir dir;
  SyntheticOptions options;
  options.wards = 60;
  options.vertices_per_edge = 12;
  REQUIRE(writeSyntheticShapefileZip(makeSyntheticDataset(options), dir.file("wards.zip")).ok());
  ExtractedShapefile files;
  ShapefileLayer layer;
  REQUIRE(loadShapefileZip(dir.file("wards.zip"), dir.dir("out"), {}, {}, &files, &layer).ok());

  const WardOutlines outlines = WardOutlines::project(layer);
  REQUIRE(outlines.size() == layer.size());
  CHECK(outlines.height() > 100);
  CHECK(outlines.height() < 3200);
  for (size_t i = 0; i < outlines.size(); ++i) {
    const auto rings = parsePath(outlines.path(i));
    REQUIRE(rings.size() == 1);
    CHECK(rings[0].size() >= 3);
    for (const Point& point : rings[0]) {
      CHECK(point.x >= -1e-9);
      CHECK(point.x <= outlines.width() + 0.05);
      CHECK(point.y >= -1e-9);
      CHECK(point.y <= outlines.height() + 0.05);
    }
  }
  const WardOutlines again = WardOutlines::project(layer);
  for (size_t i = 0; i < outlines.size(); ++i) CHECK(again.path(i) == outlines.path(i));
}

}  // namespace
}  // namespace stickyproxy::backend
