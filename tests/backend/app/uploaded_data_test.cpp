#include "backend/app/uploaded_data.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>

#include "backend/app/session_layout.h"
#include "backend/app/shape_cache.h"
#include "backend/data/synthetic_data.h"
#include "tests/proxy/test_files.h"

using namespace stickyproxy::backend;
using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

namespace {

// Generated data under `dir` with the names an upload is stored under.
void writeUpload(const TempDir& dir, size_t wards) {
  SyntheticOptions options;
  options.wards = wards;
  SyntheticDataset dataset = makeSyntheticDataset(options);
  REQUIRE(writeSyntheticCsv(dataset, dir.file(kCsvFile)).ok());
  REQUIRE(writeSyntheticShapefileZip(dataset, dir.file(kShapefileZip)).ok());
}

}  // namespace

TEST_CASE("loadUploadedData joins a generated upload and builds the analysis input", "[app]") {
  TempDir dir;
  writeUpload(dir, 200);
  writeFile(dir.file(kUploadMetaFile), R"({"csv_filename":"kano.csv","shapefile_filename":"kano.zip"})");

  UploadedData data;
  DataStatus status = loadUploadedData(dir.path(), UploadLimits{}, &data);
  REQUIRE(status.ok());
  CHECK(data.has_shapes);
  CHECK(data.csv_filename == "kano.csv");
  CHECK(data.table.rowCount() == 200);
  CHECK(data.layer.size() == 200);
  CHECK(data.join.matchedCount() == 200);
  REQUIRE(data.wards.wardCount() == 200);
  // Generated WardCodes are unique, so they key the wards; every row has neighbours.
  CHECK(data.wards.keys[0] == std::string(data.table.column("WardCode")->cell(0)));
  CHECK(data.wards.adjacency.size() == 200);
  CHECK_FALSE(data.wards.adjacency[0].empty());
  CHECK(data.wards.findColumn("pfpr") != nullptr);
  CHECK(data.wards.findColumn("WardName") == nullptr);

  picojson::object summary = data.summaryJson();
  CHECK(summary["total_rows"].get<double>() == 200);
  CHECK(summary["shapefile_info"].is<picojson::object>());
  CHECK(summary["join"].is<picojson::object>());
}

TEST_CASE("loadUploadedData takes a CSV alone, and refuses shapes that match no ward", "[app]") {
  TempDir dir;
  writeFile(dir.file(kCsvFile), "WardName,WardCode,pfpr\nA,X1,0.5\nB,X2,0.25\n");
  UploadedData csv_only;
  REQUIRE(loadUploadedData(dir.path(), UploadLimits{}, &csv_only).ok());
  CHECK_FALSE(csv_only.has_shapes);
  CHECK(csv_only.summaryJson()["shapefile_info"].is<picojson::null>());
  CHECK(csv_only.wards.keys == std::vector<std::string>{"X1", "X2"});

  // A shapefile of other wards: nothing could be mapped.
  TempDir other;
  writeUpload(other, 200);
  std::filesystem::copy_file(other.file(kShapefileZip), dir.file(kShapefileZip));
  UploadedData mismatched;
  DataStatus status = loadUploadedData(dir.path(), UploadLimits{}, &mismatched);
  CHECK_FALSE(status.ok());
  CHECK(status.message().find("No ward of the shapefile matches") != std::string::npos);
}

TEST_CASE("buildWardTable keys by WardCode only when codes are present and unique", "[app]") {
  TempDir dir;
  writeFile(dir.file(kCsvFile), "WardName,WardCode,pfpr\nA,X1,0.5\nB,X1,0.25\nA,X3,NA\n");
  UploadedData data;
  REQUIRE(loadUploadedData(dir.path(), UploadLimits{}, &data).ok());
  // X1 twice: the join's disambiguated names key the wards instead, and stay unique.
  CHECK(data.wards.keys == data.join.row_keys);
  CHECK(data.wards.keys[0] != data.wards.keys[2]);
  REQUIRE(data.wards.columns.size() == 1);
  CHECK_FALSE(data.wards.columns[0].values[2].has_value());
}

TEST_CASE("a zip uploaded again is parsed once: its shapes are shared while an upload holds them", "[app]") {
  TempDir first_dir;
  TempDir second_dir;
  TempDir other_dir;
  writeUpload(first_dir, 120);
  writeUpload(second_dir, 120);  // the same generator and seed: the same bytes
  writeUpload(other_dir, 121);

  auto first = std::make_unique<UploadedData>();
  REQUIRE(loadUploadedData(first_dir.path(), UploadLimits{}, first.get()).ok());
  REQUIRE(first->outlines != nullptr);
  CHECK(std::filesystem::exists(first_dir.file("shapefile/wards.shp")));
  CHECK(first->layer.wards()[0].rings.empty());  // only outlines and adjacency are kept of the geometry

  UploadedData second;
  REQUIRE(loadUploadedData(second_dir.path(), UploadLimits{}, &second).ok());
  CHECK(second.outlines == first->outlines);
  CHECK_FALSE(std::filesystem::exists(second_dir.file("shapefile/wards.shp")));  // nothing extracted
  CHECK(second.layer.size() == 120);
  CHECK(second.wards.adjacency == first->wards.adjacency);
  CHECK(second.summaryJson()["shapefile_info"].serialize() == first->summaryJson()["shapefile_info"].serialize());

  UploadedData other;
  REQUIRE(loadUploadedData(other_dir.path(), UploadLimits{}, &other).ok());
  CHECK(other.outlines != first->outlines);
  CHECK(other.layer.size() == 121);

  // Once no upload holds them, the shapes go; the next load parses the files again, the same way.
  const std::string digest = ShapeCache::digestOf(first_dir.file(kShapefileZip));
  CHECK(digest.size() == 64);
  CHECK(ShapeCache::instance().find(digest).has_value());
  const std::string first_path = first->outlines->path(0);
  first.reset();
  second = UploadedData();
  CHECK_FALSE(ShapeCache::instance().find(digest).has_value());
  UploadedData again;
  REQUIRE(loadUploadedData(second_dir.path(), UploadLimits{}, &again).ok());
  CHECK(std::filesystem::exists(second_dir.file("shapefile/wards.shp")));
  CHECK(again.outlines->path(0) == first_path);
}
