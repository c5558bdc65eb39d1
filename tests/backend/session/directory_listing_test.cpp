#include "backend/session/directory_listing.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "tests/proxy/test_files.h"

using namespace stickyproxy::backend;
namespace fs = std::filesystem;

namespace {

using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

}  // namespace

TEST_CASE("listDirectory names each entry with its own type, symlinks unfollowed", "[session]") {
  TempDir dir;
  writeFile(dir.file("a.csv"), "x");
  fs::create_directory(dir.file("sub"));
  fs::create_directory_symlink(dir.file("sub"), dir.file("link"));
  std::error_code error = std::make_error_code(std::errc::io_error);
  std::vector<DirectoryEntry> entries = listDirectory(dir.path(), &error);
  CHECK_FALSE(error);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].name == "a.csv");
  CHECK(entries[0].type == fs::file_type::regular);
  CHECK(entries[1].name == "link");
  CHECK(entries[1].type == fs::file_type::symlink);
  CHECK(entries[2].name == "sub");
  CHECK(entries[2].type == fs::file_type::directory);
}

TEST_CASE("listDirectory reports a directory it cannot walk instead of throwing", "[session]") {
  TempDir dir;
  std::error_code error;
  CHECK(listDirectory(dir.file("missing"), &error).empty());
  CHECK(error == std::errc::no_such_file_or_directory);

  writeFile(dir.file("plain"), "x");
  CHECK(listDirectory(dir.file("plain"), &error).empty());
  CHECK(error == std::errc::not_a_directory);

  CHECK(listDirectory(dir.path(), &error).size() == 1);
  CHECK_FALSE(error);
}
