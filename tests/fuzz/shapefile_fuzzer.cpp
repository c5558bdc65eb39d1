// Fuzz target "shapefile": the parts of an extracted shapefile (.shp, .shx, .dbf and optionally
// .prj), read by ShapefileLayer::read() (backend/data/shapefile_zip.h) through shapelib.
//
// Input: the parts one after the other, each after a marker line "\n@@shx@@\n", "\n@@dbf@@\n"
// and "\n@@prj@@\n" (the .shp comes first, unmarked); a missing part is an empty file.
// tests/fuzz/make_seeds.cpp writes the seeds in this layout.
//
// Invariants: a layer read has one ward per record, one attribute per field in each, rings that
// are closed and lie inside their ward's bounds, which lie inside the layer's; vertexCount()
// counts the vertices of the file (at least those of the rings, before closing).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backend/data/shapefile_zip.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// The part after `marker` up to the next marker (or the end); empty when absent.
std::string_view part(std::string_view input, std::string_view marker) {
  size_t at = input.find(marker);
  if (at == std::string_view::npos) return {};
  std::string_view rest = input.substr(at + marker.size());
  return rest.substr(0, rest.find("\n@@"));
}

bool inside(const stickyproxy::backend::Point& p, const stickyproxy::backend::BoundingBox& box) {
  return p.x >= box.min_x && p.x <= box.max_x && p.y >= box.min_y && p.y <= box.max_y;
}

bool inside(const stickyproxy::backend::BoundingBox& a, const stickyproxy::backend::BoundingBox& b) {
  return a.min_x >= b.min_x && a.max_x <= b.max_x && a.min_y >= b.min_y && a.max_y <= b.max_y;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  backend::ExtractedShapefile files;
  files.shp_path = scratchDir() + "/wards.shp";
  files.shx_path = scratchDir() + "/wards.shx";
  files.dbf_path = scratchDir() + "/wards.dbf";
  files.source_name = "wards.shp";
  writeFile(files.shp_path, input.substr(0, input.find("\n@@")));
  writeFile(files.shx_path, part(input, "\n@@shx@@\n"));
  writeFile(files.dbf_path, part(input, "\n@@dbf@@\n"));
  const std::string_view prj = part(input, "\n@@prj@@\n");
  if (!prj.empty()) {
    files.prj_path = scratchDir() + "/wards.prj";
    writeFile(files.prj_path, prj);
  }

  backend::ShapefileLayer layer;
  const backend::DataStatus status = backend::ShapefileLayer::read(files, backend::ShapefileLimits{1000, 100000}, &layer);
  if (!status.ok()) {
    FUZZ_CHECK(!status.message().empty(), "a failure without a message");
    FUZZ_CHECK(layer.size() == 0, "a failed read left wards: " + status.message());
    return 0;
  }
  size_t ring_vertices = 0;
  bool any_ring = false;
  for (const backend::WardShape& ward : layer.wards()) {
    FUZZ_CHECK(ward.attributes.size() == layer.fieldNames().size(), "attributes per ward");
    for (const auto& ring : ward.rings) {
      FUZZ_CHECK(!ring.empty() && ring.front() == ring.back(), "a ring that is not closed");
      for (const backend::Point& point : ring) FUZZ_CHECK(inside(point, ward.bounds), "a point outside its ward's bounds");
      ring_vertices += ring.size() - 1;
      any_ring = true;
    }
    if (!ward.rings.empty()) FUZZ_CHECK(inside(ward.bounds, layer.bounds()), "a ward outside the layer's bounds");
  }
  (void)any_ring;
  FUZZ_CHECK(layer.vertexCount() >= ring_vertices,
             "vertexCount() " + std::to_string(layer.vertexCount()) + " < " + std::to_string(ring_vertices));
  (void)layer.infoJson();
  return 0;
}
