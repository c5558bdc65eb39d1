// Helpers for the backend/data tests beyond the shared ones (scratch directories and whole-file
// reads and writes: testing::TempDir, readFile and writeFile in tests/proxy/test_files.h).
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace stickyproxy::backend::data_test {

// Names of the entries of `dir`, sorted.
inline std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace stickyproxy::backend::data_test
