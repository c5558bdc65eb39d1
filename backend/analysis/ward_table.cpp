#include "backend/analysis/ward_table.h"

#include <cmath>
#include <string>
#include <unordered_set>

namespace stickyproxy::backend {

const NumericColumn* WardTable::findColumn(std::string_view name) const {
  for (const NumericColumn& column : columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

DataStatus validateWardTable(const WardTable& table) {
  const size_t wards = table.wardCount();
  if (wards == 0) return AnalysisError{"The ward data has no wards"};
  if (table.names.size() != wards) {
    return AnalysisError{"The ward data has " + std::to_string(wards) + " ward keys but " +
                         std::to_string(table.names.size()) + " ward names"};
  }
  std::unordered_set<std::string_view> keys;
  keys.reserve(wards);
  for (const std::string& key : table.keys) {
    if (key.empty()) return AnalysisError{"A ward has an empty key"};
    if (!keys.insert(key).second) return AnalysisError{"Duplicate ward key '" + key + "'"};
  }
  std::unordered_set<std::string_view> column_names;
  for (const NumericColumn& column : table.columns) {
    if (!column_names.insert(column.name).second) {
      return AnalysisError{"Duplicate column '" + column.name + "'"};
    }
    if (column.values.size() != wards) {
      return AnalysisError{"Column '" + column.name + "' has " +
                           std::to_string(column.values.size()) + " values for " +
                           std::to_string(wards) + " wards"};
    }
    for (size_t i = 0; i < wards; ++i) {
      if (column.values[i] && !std::isfinite(*column.values[i])) {
        return AnalysisError{"Column '" + column.name + "' has a non-finite value for ward '" +
                             table.keys[i] + "'"};
      }
    }
  }
  if (!table.adjacency.empty()) {
    if (table.adjacency.size() != wards) {
      return AnalysisError{"The adjacency list has " + std::to_string(table.adjacency.size()) +
                           " entries for " + std::to_string(wards) + " wards"};
    }
    for (size_t i = 0; i < wards; ++i) {
      for (size_t neighbour : table.adjacency[i]) {
        if (neighbour >= wards) {
          return AnalysisError{"Ward '" + table.keys[i] + "' has an out-of-range neighbour " +
                               std::to_string(neighbour)};
        }
      }
    }
  }
  return DataStatus();
}

}  // namespace stickyproxy::backend
