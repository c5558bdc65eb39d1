// Deterministic synthetic ward data: a CSV of malaria risk covariates and the matching zipped
// polygon shapefile, for tests, demos and load tools.
//
// The wards are cells of a jittered grid cut into an irregular, state-like outline (Niger State's
// extent and LGA names). Neighbouring cells share their edges vertex for vertex. Covariates come
// from smooth random fields and a few town centres, so neighbours have similar values; some are
// missing (NA or empty), and a few ward names repeat across LGAs, as they do in real data.
//
// Same options, same bytes: randomness comes only from std::mt19937_64 seeded from `seed`, turned
// into numbers by our own code (the standard distributions differ between libraries). Geometry
// and covariates use separate streams, so changing vertices_per_edge leaves the CSV unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/data/data_status.h"
#include "backend/data/shapefile_zip.h"

namespace stickyproxy::backend {

// The most vertices a generated layer may have: ShapefileLimits' default, so uploads of generated
// data always pass.
constexpr size_t kMaxSyntheticVertices = 20000000;

struct SyntheticOptions {
  uint64_t seed = 7;
  size_t wards = 300;  // 200..500 is realistic for a state; 1..20000 is accepted
  // Extra vertices along every cell edge: the knob for the shapefile's size. 8 gives a zip of
  // about 100 KB for 300 wards; 256 gives over 5 MB for 500 wards. Lowered when needed to keep
  // the layer within kMaxSyntheticVertices.
  size_t vertices_per_edge = 8;
};

struct SyntheticWard {
  std::string ward_name;
  std::string ward_code;  // state code + LGA code + two-digit number, e.g. NISAGR01
  std::string lga_code;
  std::string lga_name;
  bool urban = false;
  int grid_row = 0;  // the cell in the grid: wards are rook neighbours exactly when their cells are
  int grid_col = 0;
  std::vector<Point> ring;          // closed and clockwise, as shapefiles store outer rings
  std::vector<std::string> values;  // one cell per SyntheticDataset::value_columns; "NA" or "" when missing
};

struct SyntheticDataset {
  std::string state_code;
  std::string state_name;
  std::vector<std::string> value_columns;  // population ... settlement_type
  std::vector<SyntheticWard> wards;        // in shapefile record order (row by row across the grid)

  // The CSV header: WardName, WardCode, LGACode, LGAName, StateCode, StateName, then value_columns.
  std::vector<std::string> csvColumns() const;
};

SyntheticDataset makeSyntheticDataset(const SyntheticOptions& options);

// Writes the CSV, rows ordered by WardCode (not the shapefile's order, as with real uploads).
// Written to a temporary name beside `path`, then renamed.
DataStatus writeSyntheticCsv(const SyntheticDataset& dataset, const std::string& path);

// Writes niger_wards.shp/.shx/.dbf/.prj/.cpg with shapelib into a temporary directory beside
// `path`, zips them with libzip (fixed timestamps and permissions, so the bytes depend only on
// the dataset) and renames the zip to `path`. The DBF holds WardCode, WardName, LGACode, LGAName,
// StateCode, StateName and Urban.
DataStatus writeSyntheticShapefileZip(const SyntheticDataset& dataset, const std::string& path);

struct SyntheticFiles {
  std::string csv_path;  // <out_dir>/wards.csv
  std::string zip_path;  // <out_dir>/wards_shapefile.zip
  uint64_t csv_bytes = 0;
  uint64_t zip_bytes = 0;
};

// makeSyntheticDataset() and both writers, into the existing directory `out_dir`.
DataStatus writeSyntheticData(const SyntheticOptions& options, const std::string& out_dir,
                              SyntheticFiles* files);

}  // namespace stickyproxy::backend
