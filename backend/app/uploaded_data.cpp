#include "backend/app/uploaded_data.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <unordered_set>

#include "backend/app/session_layout.h"
#include "backend/app/shape_cache.h"
#include "proxy/net/file_util.h"
#include "proxy/net/json_document.h"

namespace stickyproxy::backend {

namespace {

bool fileExists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

void readDisplayNames(const std::string& data_dir, UploadedData* out) {
  std::string text;
  if (!readWholeFile(joinPath(data_dir, kUploadMetaFile), &text)) return;
  picojson::value root;
  std::string error = parseJsonDocument(text, &root);
  if (!error.empty() || !root.is<picojson::object>()) return;
  const picojson::object& object = root.get<picojson::object>();
  auto text_of = [&](const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->second.is<std::string>() ? it->second.get<std::string>() : std::string();
  };
  out->csv_filename = text_of("csv_filename");
  out->shapefile_filename = text_of("shapefile_filename");
}

// The parts an earlier load extracted into `shape_dir`, when its .shp is there (extraction
// renames the .shp last, so a complete .shp means a complete set).
std::optional<ExtractedShapefile> extractedEarlier(const std::string& shape_dir) {
  const std::string base = joinPath(shape_dir, ShapefileZipOptions().basename) + ".";
  if (!fileExists(base + "shp") || !fileExists(base + "shx") || !fileExists(base + "dbf")) return std::nullopt;
  ExtractedShapefile files;
  files.shp_path = base + "shp";
  files.shx_path = base + "shx";
  files.dbf_path = base + "dbf";
  if (fileExists(base + "prj")) files.prj_path = base + "prj";
  if (fileExists(base + "cpg")) files.cpg_path = base + "cpg";
  files.source_name = "shapefile.zip";
  return files;
}

size_t stringBytes(const std::string& text) { return sizeof(std::string) + text.capacity(); }

size_t stringsBytes(const std::vector<std::string>& texts) {
  size_t bytes = sizeof texts;
  for (const std::string& text : texts) bytes += stringBytes(text);
  return bytes;
}

}  // namespace

size_t UploadedData::memoryBytes() const {
  size_t bytes = sizeof *this + stringBytes(csv_filename) + stringBytes(shapefile_filename);
  for (const CsvColumn& column : table.columns()) {
    bytes += sizeof column + column.name().capacity() + column.size() * (4 + 1) + column.numbers().capacity() * 8;
    for (size_t row = 0; row < column.size(); ++row) bytes += column.cell(row).size();
  }
  for (const WardShape& shape : layer.wards()) {
    bytes += sizeof shape + stringsBytes(shape.attributes);
    for (const auto& ring : shape.rings) bytes += sizeof ring + ring.capacity() * sizeof(Point);
  }
  if (outlines) bytes += sizeof *outlines + outlines->pathBytes() + outlines->size() * sizeof(std::string);
  bytes += stringsBytes(join.row_keys) + stringsBytes(join.shape_keys);
  bytes += (join.shape_of_row.size() + join.row_of_shape.size()) * sizeof(std::optional<size_t>);
  bytes += stringsBytes(wards.keys) + stringsBytes(wards.names) + stringsBytes(wards.text_columns);
  for (const NumericColumn& column : wards.columns) bytes += sizeof column + column.values.capacity() * 16;
  for (const auto& neighbours : wards.adjacency) bytes += sizeof neighbours + neighbours.capacity() * sizeof(size_t);
  return bytes;
}

picojson::object UploadedData::summaryJson() const {
  picojson::object summary = table.summary().toJson();
  summary["shapefile_info"] = has_shapes ? picojson::value(layer.infoJson()) : picojson::value();
  summary["join"] = has_shapes ? picojson::value(join.toJson()) : picojson::value();
  return summary;
}

WardTable buildWardTable(const CsvTable& table, const WardJoin& join, const Adjacency& row_adjacency) {
  WardTable wards;
  const size_t rows = table.rowCount();
  wards.names = join.row_keys;
  const CsvColumn* codes = table.column("WardCode");
  std::unordered_set<std::string_view> seen_codes;
  bool codes_usable = codes != nullptr;
  for (size_t row = 0; codes_usable && row < rows; ++row) {
    codes_usable = !codes->isMissing(row) && seen_codes.insert(codes->cell(row)).second;
  }
  for (size_t row = 0; row < rows; ++row) {
    wards.keys.push_back(codes_usable ? std::string(codes->cell(row)) : join.row_keys[row]);
  }
  for (const CsvColumn& column : table.columns()) {
    if (column.type() != ColumnType::kNumeric) {
      wards.text_columns.push_back(column.name());
      continue;
    }
    NumericColumn numeric{column.name(), {}};
    numeric.values.reserve(rows);
    for (size_t row = 0; row < rows; ++row) {
      if (column.isMissing(row)) {
        numeric.values.emplace_back();
      } else {
        numeric.values.emplace_back(column.number(row));
      }
    }
    wards.columns.push_back(std::move(numeric));
  }
  wards.adjacency = row_adjacency;
  return wards;
}

DataStatus loadUploadedData(const std::string& data_dir, const UploadLimits& limits, UploadedData* out) {
  CsvReadOptions csv_options;
  csv_options.required_columns = {std::string(kWardNameColumn)};
  csv_options.limits = limits.csv;
  DataStatus status = CsvTable::read(joinPath(data_dir, kCsvFile), csv_options, &out->table);
  if (!status.ok()) return status;
  readDisplayNames(data_dir, out);

  const std::string zip_path = joinPath(data_dir, kShapefileZip);
  out->has_shapes = fileExists(zip_path);
  Adjacency row_adjacency;
  if (out->has_shapes) {
    // The same zip bytes were parsed before (another user of the same state, or this session
    // before the memory budget evicted it): their records, adjacency and outlines are taken as
    // they are, and nothing is extracted.
    const std::string digest = ShapeCache::digestOf(zip_path);
    std::optional<ParsedShapes> shapes = digest.empty() ? std::nullopt : ShapeCache::instance().find(digest);
    if (!shapes) {
      shapes.emplace();
      const std::string shape_dir = joinPath(data_dir, kShapefileDir);
      // Not create_directories: a session adopted away meanwhile must not get its directory back.
      std::error_code ignored;
      std::filesystem::create_directory(shape_dir, ignored);
      if (std::optional<ExtractedShapefile> earlier = extractedEarlier(shape_dir)) {
        status = ShapefileLayer::read(*earlier, limits.shapes, &shapes->layer);
      } else {
        ShapefileZipOptions zip_options;
        zip_options.limits = limits.zip;
        ExtractedShapefile files;
        status = loadShapefileZip(zip_path, shape_dir, zip_options, limits.shapes, &files, &shapes->layer);
      }
      if (!status.ok()) return status;
      shapes->adjacency = computeAdjacency(shapes->layer.wards());
      shapes->outlines = std::make_shared<const WardOutlines>(
          WardOutlines::project(shapes->layer, WardOutlines::kDefaultWidth, WardOutlines::kDisplayGrid));
      shapes->layer.dropGeometry();
      if (!digest.empty()) ShapeCache::instance().insert(digest, *shapes);
    }
    out->layer = std::move(shapes->layer);
    out->outlines = std::move(shapes->outlines);
    out->join = joinWards(out->table, out->layer);
    if (out->join.matchedCount() == 0) {
      return DataStatus::error(DataError::kMissingColumns,
                               "No ward of the shapefile matches a ward of the CSV (by WardCode or WardName); "
                               "check that both files describe the same wards");
    }
    row_adjacency = rowAdjacency(out->join, shapes->adjacency);
  } else {
    out->join = joinWards(out->table, out->layer);
  }
  out->wards = buildWardTable(out->table, out->join, row_adjacency);
  return {};
}

}  // namespace stickyproxy::backend
