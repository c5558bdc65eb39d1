#include "backend/export/zip_archive.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <zip.h>

#include <catch2/catch.hpp>

#include "tests/backend/data/data_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

using data_test::listDir;
using stickyproxy::testing::readFile;
using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

struct ReadEntry {
  std::string name;
  std::string bytes;
  zip_uint16_t method = 0;
};

// Every entry of the zip at `path`, in archive order, read back with libzip (consistency checked).
std::vector<ReadEntry> readZip(const std::string& path) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
  REQUIRE(archive != nullptr);
  std::vector<ReadEntry> entries;
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t stat;
    REQUIRE(zip_stat_index(archive, index, 0, &stat) == 0);
    ReadEntry entry{zip_get_name(archive, index, 0), std::string(stat.size, '\0'), stat.comp_method};
    zip_file_t* file = zip_fopen_index(archive, index, 0);
    REQUIRE(file != nullptr);
    size_t done = 0;
    while (done < entry.bytes.size()) {
      const zip_int64_t got = zip_fread(file, entry.bytes.data() + done, entry.bytes.size() - done);
      REQUIRE(got > 0);
      done += static_cast<size_t>(got);
    }
    zip_fclose(file);
    entries.push_back(std::move(entry));
  }
  zip_close(archive);
  return entries;
}

// `size` bytes that deflate only partly: text runs mixed with a fixed pseudo-random sequence.
std::string sampleBytes(size_t size) {
  std::string bytes;
  bytes.reserve(size);
  uint64_t state = 0x2545F4914F6CDD1Dull;
  while (bytes.size() < size) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    if ((state >> 60) < 4) {
      bytes += "Tudun Wada,NISCHA04,0.4375,High Risk\r\n";
    } else {
      bytes.push_back(static_cast<char>(state >> 56));
    }
  }
  bytes.resize(size);
  return bytes;
}

TEST_CASE("entries from memory and from a file read back with their names and bytes", "[export]") {
  TempDir dir;
  const std::string source = dir.file("rankings.csv");
  writeFile(source, "WardName,WardCode\r\n\"Gwale, North\",KNGWA01\r\n");
  const std::string zip = dir.file("export.zip");

  const DataStatus status = writeZipArchive(
      zip, {{"summary.txt", "", "Wards analysed: 3\n"},
            {"analysis_vulnerability_rankings.csv", source, "ignored when source_path is set"},
            {"empty.txt", "", ""},
            {"Kàno ward report.html", "", "<p>\xC3\xA0</p>"}});
  REQUIRE(status.ok());

  const std::vector<ReadEntry> entries = readZip(zip);
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].name == "summary.txt");
  CHECK(entries[0].bytes == "Wards analysed: 3\n");
  CHECK(entries[1].name == "analysis_vulnerability_rankings.csv");
  CHECK(entries[1].bytes == readFile(source));
  CHECK(entries[2].name == "empty.txt");
  CHECK(entries[2].bytes.empty());
  CHECK(entries[3].name == "Kàno ward report.html");
  CHECK(entries[3].bytes == "<p>\xC3\xA0</p>");
  CHECK(entries[0].method == ZIP_CM_DEFLATE);
  CHECK(entries[1].method == ZIP_CM_DEFLATE);
  // Only the archive is left: the temporary file was renamed into place.
  CHECK(listDir(dir.path()) == std::vector<std::string>{"export.zip", "rankings.csv"});
}

TEST_CASE("a source file over 10 MB is streamed in and reads back byte for byte", "[export]") {
  TempDir dir;
  const std::string source = dir.file("unified_dataset.csv");
  const std::string bytes = sampleBytes(12u * 1024 * 1024 + 7);
  writeFile(source, bytes);
  const std::string zip = dir.file("export.zip");

  REQUIRE(writeZipArchive(zip, {{"unified_dataset.csv", source, ""}, {"README.txt", "", "see the CSV"}}).ok());

  const std::vector<ReadEntry> entries = readZip(zip);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "unified_dataset.csv");
  CHECK(entries[0].bytes.size() == bytes.size());
  CHECK(entries[0].bytes == bytes);
  CHECK(entries[1].bytes == "see the CSV");
  CHECK(readFile(zip).size() < bytes.size());  // deflated, not stored
}

TEST_CASE("an existing archive is replaced whole", "[export]") {
  TempDir dir;
  const std::string zip = dir.file("export.zip");
  REQUIRE(writeZipArchive(zip, {{"old.txt", "", "old"}, {"gone.txt", "", "gone"}}).ok());
  REQUIRE(writeZipArchive(zip, {{"new.txt", "", "new"}}).ok());

  const std::vector<ReadEntry> entries = readZip(zip);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].name == "new.txt");
  CHECK(entries[0].bytes == "new");
  CHECK(listDir(dir.path()) == std::vector<std::string>{"export.zip"});
  struct stat info {};
  REQUIRE(::stat(zip.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE("no entries give a valid empty zip", "[export]") {
  TempDir dir;
  const std::string zip = dir.file("empty.zip");
  REQUIRE(writeZipArchive(zip, {}).ok());
  CHECK(readZip(zip).empty());
  CHECK(listDir(dir.path()) == std::vector<std::string>{"empty.zip"});
}

TEST_CASE("bad entry names fail before anything is written", "[export]") {
  TempDir dir;
  const std::string zip = dir.file("export.zip");
  writeFile(zip, "the previous export");
  const std::vector<std::string> bad_names = {
      "", ".", "..", "../escape.txt", "/etc/passwd", "sub/dir.txt", "..\\escape.txt", "C:evil.txt",
      "bell\a.txt", "line\nbreak.txt", std::string("nul\0.txt", 8), "latin1-\xE0.txt"};
  for (const std::string& name : bad_names) {
    INFO(name);
    const DataStatus status = writeZipArchive(zip, {{"fine.txt", "", "x"}, {name, "", "y"}});
    CHECK(status.code() == DataError::kUnsafeZipEntry);
    CHECK(status.message().find("zip entry name") != std::string::npos);
  }
  const DataStatus twice = writeZipArchive(zip, {{"a.txt", "", "1"}, {"a.txt", "", "2"}});
  CHECK(twice.code() == DataError::kUnsafeZipEntry);
  CHECK(twice.message() == "The zip entry name 'a.txt' is used twice");
  CHECK(readFile(zip) == "the previous export");
  CHECK(listDir(dir.path()) == std::vector<std::string>{"export.zip"});
}

TEST_CASE("a missing source file fails with kIo and leaves no temporary file", "[export]") {
  TempDir dir;
  const std::string zip = dir.file("export.zip");
  const std::string missing = dir.file("missing.csv");
  const DataStatus status =
      writeZipArchive(zip, {{"summary.txt", "", "fine"}, {"missing.csv", missing, ""}});
  CHECK(status.code() == DataError::kIo);
  CHECK(status.message().find(missing) != std::string::npos);
  CHECK(listDir(dir.path()).empty());

  const DataStatus directory = writeZipArchive(zip, {{"dir.csv", dir.dir("sub"), ""}});
  CHECK(directory.code() == DataError::kIo);
  CHECK(listDir(dir.path()) == std::vector<std::string>{"sub"});
}

TEST_CASE("a failed rename leaves the destination alone and no temporary file", "[export]") {
  TempDir dir;
  // A directory cannot be replaced by a file: everything succeeds up to the final rename.
  const std::string dest = dir.dir("export.zip");
  const DataStatus status = writeZipArchive(dest, {{"summary.txt", "", "fine"}});
  CHECK(status.code() == DataError::kIo);
  CHECK(status.message().find("rename") != std::string::npos);
  CHECK(listDir(dir.path()) == std::vector<std::string>{"export.zip"});
  CHECK(listDir(dest).empty());
}

TEST_CASE("a destination in a missing directory fails with kIo", "[export]") {
  TempDir dir;
  const DataStatus status = writeZipArchive(dir.file("no/such/dir/export.zip"), {{"a.txt", "", "a"}});
  CHECK(status.code() == DataError::kIo);
  CHECK(listDir(dir.path()).empty());
}

}  // namespace
}  // namespace stickyproxy::backend
