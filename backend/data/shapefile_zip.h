// Uploaded ward boundaries: a zipped ESRI shapefile, checked, extracted and read into polygons.
//
// The zip is untrusted. extractShapefileZip() refuses names that could escape the target directory
// (zip slip), archives whose declared or actual sizes pass the caps (zip bombs), and archives that
// do not hold exactly one complete shapefile; it extracts only the shapefile's own parts, under
// fixed names of our choosing. ShapefileLayer::read() then reads them with shapelib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <picojson.h>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

struct ShapefileZipLimits {
  uint64_t max_total_bytes = 256ull << 20;  // sum of the uncompressed sizes of all entries
  uint64_t max_entry_bytes = 128ull << 20;  // uncompressed size of any one entry
  uint64_t max_entries = 256;               // entries in the archive, directories included
};

struct ShapefileZipOptions {
  ShapefileZipLimits limits;
  // The extracted parts are named <dest_dir>/<basename>.shp, .shx, .dbf, .prj, .cpg. A plain
  // file name chosen by the caller: not empty, no '/', not starting with '.'.
  std::string basename = "wards";
};

// Where extractShapefileZip() put the parts.
struct ExtractedShapefile {
  std::string shp_path;
  std::string shx_path;
  std::string dbf_path;
  std::string prj_path;     // empty when the zip has no .prj
  std::string cpg_path;     // empty when the zip has no .cpg
  std::string source_name;  // the .shp's name inside the zip, for messages
  uint64_t extracted_bytes = 0;
};

// Checks the zip at `zip_path` and extracts its one shapefile into the existing directory
// `dest_dir`. Every entry name is checked, not only the extracted ones: an absolute path, a drive
// letter, a backslash or a ".." component anywhere rejects the whole archive. Entries under
// __MACOSX/, AppleDouble "._" files and directories are ignored when looking for the shapefile;
// other files are ignored too. The .shx and .dbf must sit next to the .shp with the same stem
// (compared case-insensitively); .prj and .cpg are taken when present.
// Each part is written to a temporary file, counted byte by byte against the caps while it is
// inflated, flushed, and renamed into place; the .shp is renamed last, so a complete .shp means a
// complete set. Parts left from an earlier extraction that this zip lacks (.prj, .cpg) are removed.
// Fails with kIo, kCorruptZip, kUnsafeZipEntry, kTooLarge or kMissingShapefilePart; on failure no
// temporary file is left behind.
DataStatus extractShapefileZip(const std::string& zip_path, const std::string& dest_dir,
                               const ShapefileZipOptions& options, ExtractedShapefile* out);

struct Point {
  double x = 0;
  double y = 0;
  bool operator==(const Point&) const = default;
};

struct BoundingBox {
  double min_x = 0;
  double min_y = 0;
  double max_x = 0;
  double max_y = 0;
};

// One record of the layer: a ward's polygon and its attribute row.
struct WardShape {
  // Rings as stored (outer rings clockwise, holes counter-clockwise), each closed: its last point
  // repeats its first. Empty for a null shape.
  std::vector<std::vector<Point>> rings;
  BoundingBox bounds;
  // One value per ShapefileLayer::fieldNames(), trimmed, as UTF-8 text.
  std::vector<std::string> attributes;
};

struct ShapefileLimits {
  size_t max_records = 100000;
  size_t max_vertices = 20000000;  // over all records
};

class ShapefileLayer {
 public:
  // Reads the extracted shapefile into `layer` (replacing its contents). The shapes must be
  // polygons (plain, Z or M); the .shp and .dbf must have the same record count. DBF text is taken
  // as UTF-8 when it is valid UTF-8, else as Latin-1. Fails with kCorruptShapefile, kNotPolygons,
  // kTooLarge or kIo, with shapelib's own complaint in the message when it gave one. On failure
  // `layer` is left empty.
  static DataStatus read(const ExtractedShapefile& files, const ShapefileLimits& limits,
                         ShapefileLayer* layer);

  size_t size() const { return wards_.size(); }
  const std::vector<WardShape>& wards() const { return wards_; }
  const std::vector<std::string>& fieldNames() const { return field_names_; }

  // Index of the attribute field called `name` (case-insensitive), or nullopt.
  std::optional<size_t> fieldIndex(std::string_view name) const;
  // The value of field `name` for record `ward`; empty when the layer has no such field.
  std::string_view attribute(size_t ward, std::string_view name) const;

  const BoundingBox& bounds() const { return bounds_; }
  size_t vertexCount() const { return vertex_count_; }
  // Shapelib's name for the shape type, e.g. "Polygon" or "PolygonZ".
  const std::string& shapeTypeName() const { return shape_type_name_; }
  // The .prj text (WKT), empty when the zip had none.
  const std::string& projection() const { return projection_; }

  // Frees every ward's rings (a state's worth of vertices) once what is made from them (outlines,
  // adjacency) is made; records, attributes, bounds, counts and infoJson() stay as they were.
  void dropGeometry();

  // The shapefile_info of an upload answer: {feature_count, shape_type, fields, vertex_count,
  // bounds: {min_x, min_y, max_x, max_y}, projection}.
  picojson::object infoJson() const;

 private:
  std::vector<WardShape> wards_;
  std::vector<std::string> field_names_;
  BoundingBox bounds_;
  size_t vertex_count_ = 0;
  std::string shape_type_name_;
  std::string projection_;
};

// extractShapefileZip() then ShapefileLayer::read(), for callers that want both.
DataStatus loadShapefileZip(const std::string& zip_path, const std::string& dest_dir,
                            const ShapefileZipOptions& options, const ShapefileLimits& limits,
                            ExtractedShapefile* files, ShapefileLayer* layer);

}  // namespace stickyproxy::backend
