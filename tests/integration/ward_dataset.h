// Synthetic ward data for app tests, made by the real build/stickyproxy-gendata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stickyproxy::integration {

struct WardDataset {
  uint64_t seed = 0;
  size_t wards = 0;
  std::string csv;                      // wards.csv, as uploaded
  std::string zip;                      // wards_shapefile.zip
  std::vector<std::string> ward_codes;  // the CSV's WardCode column, in file order
};

// Runs stickyproxy-gendata --seed `seed` --wards `wards` --detail `detail` into a new directory
// under `parent_dir` and reads what it wrote. Throws HarnessError when the tool fails or its CSV
// has no WardCode column.
WardDataset generateWardDataset(const std::string& parent_dir, uint64_t seed, size_t wards, size_t detail = 8);

}  // namespace stickyproxy::integration
