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
#include "backend/viz/ward_outlines.h"

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
  // The shapefile's records and attributes. Its rings are freed once `outlines` and the
  // adjacency are made from them (ShapefileLayer::dropGeometry): nothing after the load needs them.
  ShapefileLayer layer;
  // Every ward projected for display once per upload (WardOutlines::kDisplayGrid); every map of
  // the session is drawn from these. Null for a csv_only upload.
  std::shared_ptr<const WardOutlines> outlines;
  WardJoin join;            // rows to shapes; without shapes every row is unmatched
  WardTable wards;          // the analysis input: one ward per CSV row
  std::string csv_filename;        // as the user named the files; display only
  std::string shapefile_filename;

  // The upload answer's data_summary: the CSV summary plus shapefile_info and join (both null
  // for a csv_only upload).
  picojson::object summaryJson() const;

  // About how many bytes of memory this holds (containers and strings, not allocator overhead):
  // what a session's parsed data costs against the worker's memory budget.
  size_t memoryBytes() const;
};

// Reads <data_dir>/raw_data.csv and, when present, <data_dir>/shapefile.zip (extracted into
// <data_dir>/shapefile/, or read from there when an earlier load extracted it: a complete .shp
// there means a complete set; or neither, when ShapeCache holds the same zip's shapes already),
// joins them, builds the ward table and projects the outlines. <data_dir>/upload.json supplies
// the display file names when present. Fails with the data layer's user-facing status; a zip
// whose wards match none of the CSV's fails too, since nothing could be mapped.
DataStatus loadUploadedData(const std::string& data_dir, const UploadLimits& limits, UploadedData* out);

// The analysis input for `table`: one ward per row, keyed by WardCode where the codes are present
// and unique (else by the join's disambiguated name), named by the join's display keys, with
// every numeric column and the rows' adjacency carried over from the shapes.
WardTable buildWardTable(const CsvTable& table, const WardJoin& join, const Adjacency& row_adjacency);

}  // namespace stickyproxy::backend
