#include "backend/app/uploaded_data.h"

#include <sys/stat.h>

#include <filesystem>
#include <unordered_set>

#include "backend/app/session_layout.h"
#include "proxy/net/file_util.h"

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
  std::string error = picojson::parse(root, text);
  if (!error.empty() || !root.is<picojson::object>()) return;
  const picojson::object& object = root.get<picojson::object>();
  auto text_of = [&](const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->second.is<std::string>() ? it->second.get<std::string>() : std::string();
  };
  out->csv_filename = text_of("csv_filename");
  out->shapefile_filename = text_of("shapefile_filename");
}

}  // namespace

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
    const std::string shape_dir = joinPath(data_dir, kShapefileDir);
    // Not create_directories: a session adopted away meanwhile must not get its directory back.
    std::error_code ignored;
    std::filesystem::create_directory(shape_dir, ignored);
    ShapefileZipOptions zip_options;
    zip_options.limits = limits.zip;
    ExtractedShapefile files;
    status = loadShapefileZip(zip_path, shape_dir, zip_options, limits.shapes, &files, &out->layer);
    if (!status.ok()) return status;
    out->join = joinWards(out->table, out->layer);
    if (out->join.matchedCount() == 0) {
      return DataStatus::error(DataError::kMissingColumns,
                               "No ward of the shapefile matches a ward of the CSV (by WardCode or WardName); "
                               "check that both files describe the same wards");
    }
    row_adjacency = rowAdjacency(out->join, computeAdjacency(out->layer.wards()));
  } else {
    out->join = joinWards(out->table, out->layer);
  }
  out->wards = buildWardTable(out->table, out->join, row_adjacency);
  return {};
}

}  // namespace stickyproxy::backend
