// A session's uploaded data, parsed and joined: what the analysis, the maps and the upload
// answer's data_summary are made from. Built off the loop thread, then shared read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <picojson.h>

#include "backend/analysis/ward_table.h"
#include "backend/data/csv_table.h"
#include "backend/data/data_status.h"
#include "backend/data/shapefile_zip.h"
#include "backend/data/ward_join.h"

namespace stickyproxy::backend {

// Caps on what one upload may hold (beyond the HTTP layer's own body limit).
struct UploadLimits {
  uint64_t max_csv_bytes = 64ull << 20;
  uint64_t max_zip_bytes = 128ull << 20;
  CsvLimits csv;
  ShapefileZipLimits zip;
  ShapefileLimits shapes;
};

// The CSV column every upload must have.
inline constexpr std::string_view kWardNameColumn = "WardName";

struct UploadedData {
  CsvTable table;
  bool has_shapes = false;  // false for a csv_only upload
  ShapefileLayer layer;
  WardJoin join;            // rows to shapes; without shapes every row is unmatched
  WardTable wards;          // the analysis input: one ward per CSV row
  std::string csv_filename;        // as the user named the files; display only
  std::string shapefile_filename;

  // The upload answer's data_summary: the CSV summary plus shapefile_info and join (both null
  // for a csv_only upload).
  picojson::object summaryJson() const;
};

// Reads <data_dir>/raw_data.csv and, when present, <data_dir>/shapefile.zip (extracted into
// <data_dir>/shapefile/), joins them and builds the ward table. <data_dir>/upload.json supplies
// the display file names when present. Fails with the data layer's user-facing status; a zip
// whose wards match none of the CSV's fails too, since nothing could be mapped.
DataStatus loadUploadedData(const std::string& data_dir, const UploadLimits& limits, UploadedData* out);

// The analysis input for `table`: one ward per row, keyed by WardCode where the codes are present
// and unique (else by the join's disambiguated name), named by the join's display keys, with
// every numeric column and the rows' adjacency carried over from the shapes.
WardTable buildWardTable(const CsvTable& table, const WardJoin& join, const Adjacency& row_adjacency);

}  // namespace stickyproxy::backend
