#include "backend/data/synthetic_data.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "backend/data/csv_table.h"
#include "backend/data/ward_join.h"
#include "tests/backend/data/data_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

using stickyproxy::testing::readFile;
using stickyproxy::testing::TempDir;

SyntheticOptions optionsFor(uint64_t seed, size_t wards, size_t detail) {
  SyntheticOptions options;
  options.seed = seed;
  options.wards = wards;
  options.vertices_per_edge = detail;
  return options;
}

TEST_CASE("the same seed writes byte-identical files and another seed does not", "[data]") {
  TempDir dir;
  SyntheticFiles first;
  SyntheticFiles second;
  SyntheticFiles other;
  REQUIRE(writeSyntheticData(optionsFor(7, 300, 6), dir.dir("a"), &first).ok());
  REQUIRE(writeSyntheticData(optionsFor(7, 300, 6), dir.dir("b"), &second).ok());
  REQUIRE(writeSyntheticData(optionsFor(8, 300, 6), dir.dir("c"), &other).ok());
  CHECK(first.csv_path == dir.file("a") + "/wards.csv");
  CHECK(first.zip_path == dir.file("a") + "/wards_shapefile.zip");
  CHECK(readFile(first.csv_path) == readFile(second.csv_path));
  CHECK(readFile(first.zip_path) == readFile(second.zip_path));
  CHECK(readFile(first.csv_path) != readFile(other.csv_path));
  CHECK(readFile(first.zip_path) != readFile(other.zip_path));
  CHECK(first.csv_bytes == readFile(first.csv_path).size());
  CHECK(first.zip_bytes == readFile(first.zip_path).size());
  CHECK(data_test::listDir(dir.file("a")) == std::vector<std::string>{"wards.csv", "wards_shapefile.zip"});

  // The detail knob changes only the geometry, never the table.
  SyntheticFiles detailed;
  REQUIRE(writeSyntheticData(optionsFor(7, 300, 20), dir.dir("d"), &detailed).ok());
  CHECK(readFile(detailed.csv_path) == readFile(first.csv_path));
  CHECK(detailed.zip_bytes > first.zip_bytes);
}

TEST_CASE("the small setting stays under 300 KB and the large one passes 5 MB", "[data]") {
  TempDir dir;
  SyntheticFiles small;
  REQUIRE(
      writeSyntheticData(optionsFor(7, 200, SyntheticOptions().vertices_per_edge), dir.dir("small"), &small)
          .ok());
  CHECK(small.zip_bytes < 300u * 1024);
  CHECK(small.zip_bytes > 20u * 1024);
  SyntheticFiles large;
  REQUIRE(writeSyntheticData(optionsFor(7, 500, 256), dir.dir("large"), &large).ok());
  CHECK(large.zip_bytes > 5u * 1024 * 1024);
}

TEST_CASE("the generated CSV has every expected column, plausible values and some gaps", "[data]") {
  TempDir dir;
  SyntheticFiles files;
  REQUIRE(writeSyntheticData(optionsFor(21, 350, 2), dir.path(), &files).ok());
  CsvReadOptions read_options;
  read_options.required_columns = {"WardName", "WardCode", "LGACode", "LGAName", "StateCode", "StateName"};
  CsvTable table;
  REQUIRE(CsvTable::read(files.csv_path, read_options, &table).ok());
  CHECK(table.rowCount() == 350);
  const std::vector<std::string> expected_columns = {"WardName",
                                                     "WardCode",
                                                     "LGACode",
                                                     "LGAName",
                                                     "StateCode",
                                                     "StateName",
                                                     "population",
                                                     "u5_tpr_rdt",
                                                     "pfpr",
                                                     "mean_rainfall",
                                                     "mean_EVI",
                                                     "mean_NDVI",
                                                     "NDWI",
                                                     "NDMI",
                                                     "distance_to_water",
                                                     "elevation",
                                                     "housing_quality",
                                                     "mean_soil_wetness",
                                                     "avgRAD",
                                                     "temp_mean",
                                                     "urbanPercentage",
                                                     "settlement_type"};
  const DataSummary summary = table.summary();
  CHECK(summary.column_names == expected_columns);
  for (size_t i = 0; i < expected_columns.size(); ++i) {
    const bool text = i < 6 || expected_columns[i] == "settlement_type";
    CHECK(summary.column_types[i] == (text ? "text" : "numeric"));
  }
  CHECK(summary.data_completeness < 100.0);
  CHECK(summary.data_completeness > 97.0);
  CHECK(table.column("population")->missingCount() == 0);

  const std::map<std::string, std::pair<double, double>> ranges = {{"population", {1000, 500000}},
                                                                   {"u5_tpr_rdt", {0, 100}},
                                                                   {"pfpr", {0, 1}},
                                                                   {"mean_rainfall", {50, 250}},
                                                                   {"mean_EVI", {0, 1}},
                                                                   {"mean_NDVI", {0, 1}},
                                                                   {"NDWI", {-1, 1}},
                                                                   {"NDMI", {-1, 1}},
                                                                   {"distance_to_water", {0, 50000}},
                                                                   {"elevation", {0, 1500}},
                                                                   {"housing_quality", {0, 1}},
                                                                   {"mean_soil_wetness", {0, 1}},
                                                                   {"avgRAD", {0, 100}},
                                                                   {"temp_mean", {20, 35}},
                                                                   {"urbanPercentage", {0, 100}}};
  for (const auto& [name, range] : ranges) {
    INFO(name);
    for (double value : table.column(name)->numbers()) {
      if (std::isnan(value)) continue;
      CHECK(value >= range.first);
      CHECK(value <= range.second);
    }
  }

  const std::regex code_pattern("NIS[A-Z]{3}[0-9]{2,}");
  std::set<std::string> codes;
  std::map<std::string, std::set<std::string>> lgas_of_name;
  const CsvColumn& code = *table.column("WardCode");
  for (size_t row = 0; row < table.rowCount(); ++row) {
    const std::string ward_code(code.cell(row));
    CHECK(std::regex_match(ward_code, code_pattern));
    CHECK(ward_code.substr(3, 3) == table.column("LGACode")->cell(row));
    codes.insert(ward_code);
    lgas_of_name[std::string(table.column("WardName")->cell(row))].insert(
        std::string(table.column("LGAName")->cell(row)));
  }
  CHECK(codes.size() == table.rowCount());
  size_t shared = 0;
  for (const auto& [name, lgas] : lgas_of_name) shared += lgas.size() > 1 ? 1 : 0;
  CHECK(shared >= 2);
  std::set<std::string> settlements;
  for (size_t row = 0; row < table.rowCount(); ++row)
    settlements.insert(std::string(table.column("settlement_type")->cell(row)));
  CHECK(settlements.count("Rural") == 1);
  CHECK(settlements.count("Urban") == 1);
}

TEST_CASE("neighbouring generated wards have similar values", "[data]") {
  TempDir dir;
  SyntheticFiles files;
  REQUIRE(writeSyntheticData(optionsFor(13, 400, 1), dir.path(), &files).ok());
  CsvTable table;
  REQUIRE(CsvTable::read(files.csv_path, {}, &table).ok());
  ExtractedShapefile parts;
  ShapefileLayer layer;
  REQUIRE(loadShapefileZip(files.zip_path, dir.dir("shape"), {}, {}, &parts, &layer).ok());
  const WardJoin join = joinWards(table, layer);
  REQUIRE(join.matched_by_code == 400);
  const Adjacency neighbours = rowAdjacency(join, computeAdjacency(layer.wards()));

  for (const char* name : {"pfpr", "mean_rainfall", "elevation"}) {
    INFO(name);
    const std::vector<double>& values = table.column(name)->numbers();
    double near_sum = 0;
    size_t near_count = 0;
    double far_sum = 0;
    size_t far_count = 0;
    for (size_t a = 0; a < values.size(); ++a) {
      if (std::isnan(values[a])) continue;
      for (size_t b : neighbours[a]) {
        if (std::isnan(values[b])) continue;
        near_sum += std::fabs(values[a] - values[b]);
        ++near_count;
      }
      const size_t b = (a * 7919 + 104729) % values.size();  // a fixed, scattered partner
      if (!std::isnan(values[b]) && b != a) {
        far_sum += std::fabs(values[a] - values[b]);
        ++far_count;
      }
    }
    REQUIRE(near_count > 0);
    REQUIRE(far_count > 0);
    CHECK(near_sum / near_count < 0.6 * (far_sum / far_count));
  }
}

}  // namespace
}  // namespace stickyproxy::backend
