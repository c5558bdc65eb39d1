#include "load/app_dataset.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/proxy/test_files.h"

using namespace stickyproxy;
using namespace stickyproxy::load;

namespace {

std::string joined(const std::vector<Bytes>& pieces) {
  std::string out;
  for (const Bytes& piece : pieces) out.append(piece.data, piece.size);
  return out;
}

const char* kCsv =
    "WardName,WardCode,population\r\n"
    "Alpha,NIS01,100\r\n"
    "\"Beta, North\",NIS02,200\r\n"
    "\"Gamma \"\"Old\"\"\",NIS03,300\r\n";

}  // namespace

TEST_CASE("a data set reads gendata's two files and knows its wards", "[load]") {
  testing::TempDir dir("load-data");
  testing::writeFile(dir.file("wards.csv"), kCsv);
  testing::writeFile(dir.file("wards_shapefile.zip"), std::string(100, 'z'));
  std::string error;
  auto data = AppDataset::load(dir.path(), &error);
  REQUIRE(data);
  CHECK(data->wards() == 3);
  CHECK_FALSE(data->chunked());
  CHECK(data->csv().content.view() == kCsv);

  std::string body = joined(data->wholeBody("BOUND"));
  CHECK(body == std::string("--BOUND\r\nContent-Disposition: form-data; name=\"csv_file\"; filename=\"wards.csv\"\r\n"
                            "Content-Type: text/csv\r\n\r\n") + kCsv +
                    "\r\n--BOUND\r\nContent-Disposition: form-data; name=\"shapefile\"; filename=\"wards_shapefile.zip\"\r\n"
                    "Content-Type: application/zip\r\n\r\n" + std::string(100, 'z') + "\r\n--BOUND--\r\n");
}

TEST_CASE("a missing file or a CSV without WardCode is refused with the reason", "[load]") {
  testing::TempDir dir("load-data");
  std::string error;
  CHECK_FALSE(AppDataset::load(dir.path(), &error));
  CHECK(error.find("wards.csv") != std::string::npos);
  testing::writeFile(dir.file("wards.csv"), "Name,Code\nA,1\n");
  testing::writeFile(dir.file("wards_shapefile.zip"), "z");
  CHECK_FALSE(AppDataset::load(dir.path(), &error));
  CHECK(error.find("WardCode") != std::string::npos);
}

TEST_CASE("big files are cut into 2 MiB chunks that add up to the file", "[load]") {
  testing::TempDir dir("load-data");
  testing::writeFile(dir.file("wards.csv"), kCsv);
  std::string zip(kChunkThreshold + kChunkSize + 17, '\0');
  for (size_t i = 0; i < zip.size(); ++i) zip[i] = static_cast<char>(i * 7);
  testing::writeFile(dir.file("wards_shapefile.zip"), zip);
  std::string error;
  auto data = AppDataset::load(dir.path(), &error);
  REQUIRE(data);
  CHECK(data->chunked());
  size_t count = AppDataset::chunkCount(data->shapefile());
  CHECK(count == 4);
  CHECK(AppDataset::chunkCount(data->csv()) == 1);
  std::string rebuilt;
  for (size_t index = 0; index < count; ++index) {
    auto pieces = AppDataset::chunkBody("B", "upload1", data->shapefile(), index);
    REQUIRE(pieces.size() == 3);
    std::string head(pieces[0].view());
    CHECK(head.find("name=\"upload_id\"\r\n\r\nupload1\r\n") != std::string::npos);
    CHECK(head.find("name=\"file_type\"\r\n\r\nshapefile\r\n") != std::string::npos);
    CHECK(head.find("name=\"chunk_index\"\r\n\r\n" + std::to_string(index) + "\r\n") != std::string::npos);
    CHECK(head.find("name=\"total_chunks\"\r\n\r\n4\r\n") != std::string::npos);
    CHECK(pieces[1].size <= kChunkSize);
    CHECK(pieces[2].view() == "\r\n--B--\r\n");
    rebuilt.append(pieces[1].view());
  }
  CHECK(rebuilt == zip);
}

TEST_CASE("a downloaded result is checked against the uploaded wards", "[load]") {
  testing::TempDir dir("load-data");
  testing::writeFile(dir.file("wards.csv"), kCsv);
  testing::writeFile(dir.file("wards_shapefile.zip"), "z");
  std::string error;
  auto data = AppDataset::load(dir.path(), &error);
  REQUIRE(data);
  CHECK(data->checkWardRows("WardName,WardCode,score\n\"Beta, North\",NIS02,1\nAlpha,NIS01,2\nGamma,NIS03_Gamma,3\n").empty());
  CHECK(data->checkWardRows("WardName,WardCode\nAlpha,NIS01\nBeta,NIS02\n").find("2 rows") != std::string::npos);
  CHECK(data->checkWardRows("WardName,WardCode\nAlpha,NIS01\nBeta,NIS02\nX,NIS09\n").find("NIS09") != std::string::npos);
  CHECK(data->checkWardRows("WardName,WardCode\nAlpha,NIS01\nAlpha,NIS01\nBeta,NIS02\n").find("2 of the 3") !=
        std::string::npos);
  CHECK_FALSE(data->checkWardRows("name,code\n").empty());
  CHECK_FALSE(data->checkWardRows("").empty());
}

TEST_CASE("CSV records: quotes, doubled quotes, CRLF, blank lines and a last line without its end", "[load]") {
  std::string text = "a,\"b,1\",c\r\n\r\n\"x\"\"y\",2\nlast,3";
  size_t pos = 0;
  std::vector<std::string> fields;
  REQUIRE(readCsvRecord(text, &pos, 2, &fields));
  CHECK(fields == std::vector<std::string>{"a", "b,1"});
  REQUIRE(readCsvRecord(text, &pos, 2, &fields));
  CHECK(fields == std::vector<std::string>{"x\"y", "2"});
  REQUIRE(readCsvRecord(text, &pos, 5, &fields));
  CHECK(fields == std::vector<std::string>{"last", "3"});
  CHECK_FALSE(readCsvRecord(text, &pos, 2, &fields));
}
