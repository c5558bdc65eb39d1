// Helpers for the backend/viz tests: hand-made layers and counting in page text.
#pragma once

#include <shapefil.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "backend/data/shapefile_zip.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend::viz_test {

using Ring = std::vector<Point>;

// A ward with the given rings (already closed or not: the reader closes them).
inline WardShape shape(std::vector<Ring> rings) {
  WardShape ward;
  ward.rings = std::move(rings);
  return ward;
}

// The closed clockwise ring of the axis-aligned rectangle (x0, y0)-(x1, y1), as shapefiles store
// outer rings: up the left side first.
inline Ring rectangle(double x0, double y0, double x1, double y1) {
  return {{x0, y0}, {x0, y1}, {x1, y1}, {x1, y0}, {x0, y0}};
}

// Writes `shapes` (an empty one as a null shape) with shapelib into `dir`, with a WardName field
// holding `names`, and `prj` as the .prj when not empty, then reads them back as a layer.
inline ShapefileLayer writeLayer(const stickyproxy::testing::TempDir& dir, const std::vector<WardShape>& shapes,
                                 const std::vector<std::string>& names, std::string_view prj = {}) {
  const std::string base = dir.file("layer");
  SHPHandle shp = SHPCreate((base + ".shp").c_str(), SHPT_POLYGON);
  DBFHandle dbf = DBFCreate((base + ".dbf").c_str());
  REQUIRE(shp != nullptr);
  REQUIRE(dbf != nullptr);
  REQUIRE(DBFAddField(dbf, "WardName", FTString, 60, 0) == 0);
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::vector<double> xs;
    std::vector<double> ys;
    std::vector<int> starts;
    for (const Ring& ring : shapes[i].rings) {
      starts.push_back(static_cast<int>(xs.size()));
      for (const Point& point : ring) {
        xs.push_back(point.x);
        ys.push_back(point.y);
      }
    }
    SHPObject* object =
        shapes[i].rings.empty()
            ? SHPCreateSimpleObject(SHPT_NULL, 0, nullptr, nullptr, nullptr)
            : SHPCreateObject(SHPT_POLYGON, -1, static_cast<int>(starts.size()), starts.data(), nullptr,
                              static_cast<int>(xs.size()), xs.data(), ys.data(), nullptr, nullptr);
    REQUIRE(object != nullptr);
    const int record = SHPWriteObject(shp, -1, object);
    SHPDestroyObject(object);
    REQUIRE(record == static_cast<int>(i));
    REQUIRE(DBFWriteStringAttribute(dbf, record, 0, i < names.size() ? names[i].c_str() : ""));
  }
  SHPClose(shp);
  DBFClose(dbf);

  ExtractedShapefile files;
  files.shp_path = base + ".shp";
  files.shx_path = base + ".shx";
  files.dbf_path = base + ".dbf";
  if (!prj.empty()) {
    files.prj_path = base + ".prj";
    stickyproxy::testing::writeFile(files.prj_path, prj);
  }
  ShapefileLayer layer;
  REQUIRE(ShapefileLayer::read(files, {}, &layer).ok());
  REQUIRE(layer.size() == shapes.size());
  return layer;
}

// Non-overlapping occurrences of `needle` in `text`.
inline size_t countOf(std::string_view text, std::string_view needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

}  // namespace stickyproxy::backend::viz_test
