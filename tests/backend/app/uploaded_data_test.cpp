#include "backend/app/uploaded_data.h"

#include <catch2/catch.hpp>

#include "backend/app/session_layout.h"
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
