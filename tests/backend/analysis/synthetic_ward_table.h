// Test data for the analysis tests: a seeded grid of wards with realistic columns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/analysis/ward_table.h"

namespace stickyproxy::backend::testing {

// A `columns` x `rows` grid of wards, each adjacent to the wards left, right, above and below,
// with the numeric columns of the synthetic upload and about `missing_share` of values missing.
// The same seed always gives the same table.
inline WardTable syntheticWardTable(size_t columns, size_t rows, uint64_t seed,
                                    double missing_share = 0.05) {
  static const char* const kColumns[] = {"population",      "pfpr",      "u5_tpr_rdt",
                                         "mean_rainfall",   "distance_to_water",
                                         "housing_quality", "mean_EVI",  "elevation",
                                         "urbanPercentage"};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  WardTable table;
  const size_t wards = columns * rows;
  for (size_t i = 0; i < wards; ++i) {
    table.keys.push_back("NISAGR" + std::to_string(100 + i));
    table.names.push_back("Ward " + std::to_string(i));
  }
  table.text_columns = {"WardName", "WardCode", "LGAName"};
  for (const char* name : kColumns) {
    NumericColumn column{name, {}};
    column.values.reserve(wards);
    for (size_t i = 0; i < wards; ++i) {
      const double value = 100.0 * unit(rng);
      if (unit(rng) < missing_share) {
        column.values.emplace_back(std::nullopt);
      } else {
        column.values.emplace_back(value);
      }
    }
    table.columns.push_back(std::move(column));
  }
  table.adjacency.resize(wards);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns; ++c) {
      std::vector<size_t>& neighbours = table.adjacency[r * columns + c];
      if (c > 0) neighbours.push_back(r * columns + c - 1);
      if (c + 1 < columns) neighbours.push_back(r * columns + c + 1);
      if (r > 0) neighbours.push_back((r - 1) * columns + c);
      if (r + 1 < rows) neighbours.push_back((r + 1) * columns + c);
    }
  }
  return table;
}

}  // namespace stickyproxy::backend::testing
