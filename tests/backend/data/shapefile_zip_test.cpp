#include "backend/data/shapefile_zip.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <shapefil.h>
#include <zip.h>

#include <catch2/catch.hpp>

#include "backend/data/synthetic_data.h"
#include "tests/backend/data/data_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

using data_test::listDir;
using stickyproxy::testing::readFile;
using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

using Entries = std::vector<std::pair<std::string, std::string>>;  // name, content

// Builds a zip at `path` holding `entries` exactly as named (libzip does not sanitise names).
void makeZip(const std::string& path, const Entries& entries) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  REQUIRE(archive != nullptr);
  for (const auto& [name, content] : entries) {
    zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
    REQUIRE(source != nullptr);
    REQUIRE(zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_RAW) >= 0);
  }
  REQUIRE(zip_close(archive) == 0);
}

// The parts of a real shapefile made by the generator, keyed by extension.
struct ShapefileParts {
  std::string shp, shx, dbf, prj;
};

ShapefileParts generatedParts(const TempDir& dir, size_t wards = 200) {
  SyntheticOptions options;
  options.wards = wards;
  options.vertices_per_edge = 1;
  const std::string zip = dir.file("generated.zip");
  REQUIRE(writeSyntheticShapefileZip(makeSyntheticDataset(options), zip).ok());
  ExtractedShapefile files;
  REQUIRE(extractShapefileZip(zip, dir.dir("generated"), {}, &files).ok());
  return {readFile(files.shp_path), readFile(files.shx_path), readFile(files.dbf_path),
          readFile(files.prj_path)};
}

DataStatus extract(const TempDir& dir, const Entries& entries, ExtractedShapefile* files,
                   ShapefileZipOptions options = {}) {
  const std::string zip = dir.file("upload.zip");
  makeZip(zip, entries);
  return extractShapefileZip(zip, dir.dir("out"), options, files);
}

// Rewrites the uncompressed size that the local and central headers declare for `name`.
void patchDeclaredSize(std::string* zip, const std::string& name, uint32_t size) {
  auto read16 = [&](size_t at) {
    return static_cast<size_t>(static_cast<uint8_t>((*zip)[at]) | static_cast<uint8_t>((*zip)[at + 1]) << 8);
  };
  auto write32 = [&](size_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) (*zip)[at + i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  };
  int patched = 0;
  for (size_t at = 0; at + 46 < zip->size(); ++at) {
    if (zip->compare(at, 4, "PK\x03\x04") == 0 && zip->compare(at + 30, name.size(), name) == 0 &&
        read16(at + 26) == name.size()) {
      write32(at + 22, size);
      ++patched;
    } else if (zip->compare(at, 4, "PK\x01\x02") == 0 && zip->compare(at + 46, name.size(), name) == 0 &&
               read16(at + 28) == name.size()) {
      write32(at + 24, size);
      ++patched;
    }
  }
  REQUIRE(patched == 2);
}

TEST_CASE("entry names that escape the folder reject the whole zip (zip slip)", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  for (const char* evil : {"../evil.shp", "/etc/evil.shp", "a/../../evil.dbf", "..\\evil.shp", "C:/evil.shp",
                           "ok/..", "readme/..\\..\\x.txt"}) {
    INFO(evil);
    ExtractedShapefile files;
    const DataStatus status = extract(
        dir, {{"wards.shp", parts.shp}, {"wards.shx", parts.shx}, {"wards.dbf", parts.dbf}, {evil, "boom"}},
        &files);
    CHECK(status.code() == DataError::kUnsafeZipEntry);
    CHECK_THAT(status.message(), Catch::Contains("rejected"));
    CHECK(listDir(dir.dir("out")).empty());
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("evil.shp")));
  CHECK_FALSE(std::filesystem::exists(dir.file("evil.dbf")));
}

TEST_CASE("a zip bomb is refused by its declared sizes", "[data]") {
  TempDir dir;
  ShapefileZipOptions options;
  options.limits.max_entry_bytes = 1 << 20;
  options.limits.max_total_bytes = 3 << 20;
  ExtractedShapefile files;
  const std::string zeros(2 << 20, '\0');  // deflates to a few kilobytes
  DataStatus status =
      extract(dir, {{"wards.shp", zeros}, {"wards.shx", "x"}, {"wards.dbf", "x"}}, &files, options);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("expands to 2097152 bytes"));

  const std::string block(900 << 10, 'a');
  status = extract(
      dir, {{"a.txt", block}, {"b.txt", block}, {"c.txt", block}, {"d.txt", block}, {"wards.shp", "x"}},
      &files, options);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("expands to more than 3145728 bytes"));

  options.limits.max_entries = 3;
  status = extract(dir, {{"wards.shp", "x"}, {"wards.shx", "x"}, {"wards.dbf", "x"}, {"wards.prj", "x"}},
                   &files, options);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("4 entries"));
}

TEST_CASE("a zip bomb that lies about its size is stopped while inflating", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  const std::string zip = dir.file("liar.zip");
  makeZip(zip,
          {{"wards.shp", std::string(8 << 20, '\0')}, {"wards.shx", parts.shx}, {"wards.dbf", parts.dbf}});
  std::string bytes = readFile(zip);
  patchDeclaredSize(&bytes, "wards.shp", 1000);
  writeFile(zip, bytes);
  ExtractedShapefile files;
  const DataStatus status = extractShapefileZip(zip, dir.dir("out"), {}, &files);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("beyond its declared size"));
  CHECK(listDir(dir.dir("out")).empty());  // the partial temporary file is gone
}

TEST_CASE("a zip without its .dbf, without any .shp or with two layers is refused", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  ExtractedShapefile files;
  DataStatus status =
      extract(dir, {{"wards.shp", parts.shp}, {"wards.shx", parts.shx}, {"wards.prj", parts.prj}}, &files);
  CHECK(status.code() == DataError::kMissingShapefilePart);
  CHECK_THAT(status.message(), Catch::Contains("'wards.shp' but no matching .dbf"));

  status =
      extract(dir, {{"wards.shp", parts.shp}, {"other.shx", parts.shx}, {"other.dbf", parts.dbf}}, &files);
  CHECK(status.code() == DataError::kMissingShapefilePart);
  CHECK_THAT(status.message(), Catch::Contains("no matching .shx and .dbf"));

  status = extract(dir, {{"wards.csv", "a,b\n"}, {"__MACOSX/._wards.shp", "x"}}, &files);
  CHECK(status.code() == DataError::kMissingShapefilePart);
  CHECK_THAT(status.message(), Catch::Contains("no .shp file"));

  status = extract(dir, {{"a.shp", parts.shp}, {"b/b.shp", parts.shp}}, &files);
  CHECK(status.code() == DataError::kMissingShapefilePart);
  CHECK_THAT(status.message(), Catch::Contains("2 shapefiles"));
  CHECK(listDir(dir.dir("out")).empty());
}

TEST_CASE("corrupt and truncated zips are refused", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  ExtractedShapefile files;
  writeFile(dir.file("garbage.zip"), "this is not a zip file at all, just text pretending to be one");
  DataStatus status = extractShapefileZip(dir.file("garbage.zip"), dir.dir("out"), {}, &files);
  CHECK(status.code() == DataError::kCorruptZip);
  CHECK_THAT(status.message(), Catch::StartsWith("The shapefile upload is not a readable zip archive"));

  const std::string zip = dir.file("good.zip");
  makeZip(zip, {{"wards.shp", parts.shp}, {"wards.shx", parts.shx}, {"wards.dbf", parts.dbf}});
  const std::string good = readFile(zip);

  writeFile(dir.file("truncated.zip"), good.substr(0, good.size() / 2));
  CHECK(extractShapefileZip(dir.file("truncated.zip"), dir.dir("out"), {}, &files).code() ==
        DataError::kCorruptZip);

  // Flip bytes inside the .shp's compressed data: inflating fails or the CRC does not match.
  std::string flipped = good;
  for (size_t at = 200; at < 260; ++at) flipped[at] = static_cast<char>(flipped[at] ^ 0x5A);
  writeFile(dir.file("flipped.zip"), flipped);
  status = extractShapefileZip(dir.file("flipped.zip"), dir.dir("out"), {}, &files);
  CHECK(status.code() == DataError::kCorruptZip);
  CHECK_THAT(status.message(), Catch::Contains("wards.shp"));
  CHECK(listDir(dir.dir("out")).empty());

  CHECK(extractShapefileZip(dir.file("absent.zip"), dir.dir("out"), {}, &files).code() == DataError::kIo);
}

TEST_CASE("parts are matched case-insensitively in a folder, extras ignored, stale parts removed", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  const std::string out = dir.dir("out");
  writeFile(out + "/wards.cpg", "latin1");  // left over from an earlier upload
  ExtractedShapefile files;
  const DataStatus status = extract(dir,
                                    {{"Niger Wards/", ""},
                                     {"__MACOSX/Niger Wards/._WARDS.SHP", "resource fork"},
                                     {"Niger Wards/WARDS.SHP", parts.shp},
                                     {"Niger Wards/wards.Shx", parts.shx},
                                     {"Niger Wards/Wards.DBF", parts.dbf},
                                     {"Niger Wards/wards.prj", parts.prj},
                                     {"Niger Wards/wards.shp.xml", "<metadata/>"},
                                     {"README.txt", "hello"}},
                                    &files);
  REQUIRE(status.ok());
  CHECK(files.source_name == "Niger Wards/WARDS.SHP");
  CHECK(files.shp_path == out + "/wards.shp");
  CHECK(files.cpg_path.empty());
  CHECK(listDir(out) == std::vector<std::string>{"wards.dbf", "wards.prj", "wards.shp", "wards.shx"});
  CHECK(readFile(files.shp_path) == parts.shp);
  CHECK(files.extracted_bytes == parts.shp.size() + parts.shx.size() + parts.dbf.size() + parts.prj.size());
}

TEST_CASE("a generated shapefile reads back with every ward's ring and attributes", "[data]") {
  TempDir dir;
  SyntheticOptions options;
  options.seed = 11;
  options.wards = 240;
  options.vertices_per_edge = 3;
  const SyntheticDataset dataset = makeSyntheticDataset(options);
  REQUIRE(writeSyntheticShapefileZip(dataset, dir.file("wards.zip")).ok());

  ExtractedShapefile files;
  ShapefileLayer layer;
  const DataStatus status = loadShapefileZip(dir.file("wards.zip"), dir.dir("out"), {}, {}, &files, &layer);
  REQUIRE(status.ok());
  REQUIRE(layer.size() == dataset.wards.size());
  CHECK(layer.shapeTypeName() == "Polygon");
  CHECK_THAT(layer.projection(), Catch::Contains("WGS_1984"));
  CHECK_FALSE(files.cpg_path.empty());
  CHECK(layer.fieldIndex("wardcode") == 0u);
  size_t vertices = 0;
  for (size_t i = 0; i < layer.size(); ++i) {
    const SyntheticWard& expected = dataset.wards[i];
    CHECK(layer.attribute(i, "WardCode") == expected.ward_code);
    CHECK(layer.attribute(i, "WardName") == expected.ward_name);
    CHECK(layer.attribute(i, "LGAName") == expected.lga_name);
    CHECK(layer.attribute(i, "StateName") == "Niger");
    CHECK(layer.attribute(i, "NoSuchField").empty());
    REQUIRE(layer.wards()[i].rings.size() == 1);
    CHECK(layer.wards()[i].rings[0] == expected.ring);  // bit-exact doubles
    CHECK(expected.ring.size() == 4 * (options.vertices_per_edge + 1) + 1);
    const BoundingBox& box = layer.wards()[i].bounds;
    CHECK(box.min_x < box.max_x);
    CHECK(box.min_y < box.max_y);
    vertices += expected.ring.size();
  }
  CHECK(layer.vertexCount() == vertices);
  const picojson::value info(layer.infoJson());
  CHECK(info.get("feature_count").get<double>() == 240);
  CHECK(info.get("shape_type").get<std::string>() == "Polygon");
  CHECK(info.get("fields").get(1).get<std::string>() == "WardName");
  CHECK(info.get("bounds").get("min_x").get<double>() == layer.bounds().min_x);
  CHECK(layer.bounds().min_x > 3.0);
  CHECK(layer.bounds().max_x < 8.5);
  CHECK(layer.bounds().min_y > 7.5);
  CHECK(layer.bounds().max_y < 12.5);
}

TEST_CASE("a point shapefile is refused as not polygons", "[data]") {
  TempDir dir;
  const std::string base = dir.file("points");
  SHPHandle shp = SHPCreate((base + ".shp").c_str(), SHPT_POINT);
  DBFHandle dbf = DBFCreate((base + ".dbf").c_str());
  REQUIRE(shp != nullptr);
  REQUIRE(dbf != nullptr);
  REQUIRE(DBFAddField(dbf, "WardName", FTString, 20, 0) == 0);
  const double x = 6.0;
  const double y = 9.5;
  SHPObject* point = SHPCreateSimpleObject(SHPT_POINT, 1, &x, &y, nullptr);
  const int record = SHPWriteObject(shp, -1, point);
  SHPDestroyObject(point);
  REQUIRE(DBFWriteStringAttribute(dbf, record, 0, "Kpakungu"));
  SHPClose(shp);
  DBFClose(dbf);

  ExtractedShapefile files;
  ShapefileLayer layer;
  makeZip(dir.file("points.zip"), {{"points.shp", readFile(base + ".shp")},
                                   {"points.shx", readFile(base + ".shx")},
                                   {"points.dbf", readFile(base + ".dbf")}});
  const DataStatus status = loadShapefileZip(dir.file("points.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kNotPolygons);
  CHECK(status.message() ==
        "The shapefile holds Point shapes, not polygons; ward boundaries must be polygons");
}

TEST_CASE("shapefile parts with garbage or mismatched records are refused as corrupt", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 200);
  ExtractedShapefile files;
  ShapefileLayer layer;

  makeZip(dir.file("garbage.zip"),
          {{"w.shp", std::string(500, 'x')}, {"w.shx", std::string(120, 'y')}, {"w.dbf", parts.dbf}});
  DataStatus status = loadShapefileZip(dir.file("garbage.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kCorruptShapefile);
  CHECK_THAT(status.message(), Catch::StartsWith("The .shp/.shx files of the shapefile cannot be read"));

  const ShapefileParts fewer = generatedParts(dir, 210);
  makeZip(dir.file("mismatch.zip"), {{"w.shp", parts.shp}, {"w.shx", parts.shx}, {"w.dbf", fewer.dbf}});
  status = loadShapefileZip(dir.file("mismatch.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kCorruptShapefile);
  CHECK_THAT(status.message(), Catch::Contains("200 shapes but its .dbf has 210 attribute rows"));
  CHECK(layer.size() == 0);
  CHECK(layer.fieldNames().empty());

  // A .shp cut short: the header still claims every record.
  makeZip(dir.file("short.zip"),
          {{"w.shp", parts.shp.substr(0, parts.shp.size() / 2)}, {"w.shx", parts.shx}, {"w.dbf", parts.dbf}});
  status = loadShapefileZip(dir.file("short.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kCorruptShapefile);

  ShapefileLimits limits;
  limits.max_records = 100;
  makeZip(dir.file("many.zip"), {{"w.shp", parts.shp}, {"w.shx", parts.shx}, {"w.dbf", parts.dbf}});
  status = loadShapefileZip(dir.file("many.zip"), dir.dir("out"), {}, limits, &files, &layer);
  CHECK(status.code() == DataError::kTooLarge);
}

// Found by the "shapefile" fuzz target (tests/fuzz): shapelib sized its index from the length the
// .shx header declares, so a 100-byte .shx claiming 1.6 GB made it allocate about 3 GB (and take
// 40 s under AddressSanitizer) before failing to read 200 million records.
TEST_CASE("a .shx that declares more bytes than it has is refused before shapelib reads it", "[data]") {
  TempDir dir;
  const ShapefileParts parts = generatedParts(dir, 3);
  auto with_declared_words = [](std::string shx, uint32_t words) {
    for (int i = 0; i < 4; ++i) shx[24 + i] = static_cast<char>((words >> (8 * (3 - i))) & 0xFF);
    return shx;
  };
  ExtractedShapefile files;
  ShapefileLayer layer;

  makeZip(dir.file("huge.zip"),
          {{"w.shp", parts.shp}, {"w.shx", with_declared_words(parts.shx.substr(0, 100), 0x2FB163E8)}, {"w.dbf", parts.dbf}});
  DataStatus status = loadShapefileZip(dir.file("huge.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kCorruptShapefile);
  CHECK(status.message() ==
        "The .shp/.shx files of the shapefile cannot be read (the .shx declares 1600309200 bytes but has 100)");
  CHECK(layer.size() == 0);

  makeZip(dir.file("headless.zip"), {{"w.shp", parts.shp}, {"w.shx", parts.shx.substr(0, 99)}, {"w.dbf", parts.dbf}});
  status = loadShapefileZip(dir.file("headless.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.code() == DataError::kCorruptShapefile);
  CHECK_THAT(status.message(), Catch::Contains("shorter than its 100-byte header"));

  // Declaring fewer bytes than it has is what shapelib copes with: the records declared are read.
  makeZip(dir.file("padded.zip"), {{"w.shp", parts.shp}, {"w.shx", parts.shx + std::string(8, '\0')}, {"w.dbf", parts.dbf}});
  status = loadShapefileZip(dir.file("padded.zip"), dir.dir("out"), {}, {}, &files, &layer);
  CHECK(status.ok());
  CHECK(layer.size() == 3);
}

}  // namespace
}  // namespace stickyproxy::backend
