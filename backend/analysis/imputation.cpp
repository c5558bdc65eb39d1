#include "backend/analysis/imputation.h"

#include <cassert>

namespace stickyproxy::backend {

Expected<ImputedColumn> imputeColumn(const NumericColumn& column,
                                     const std::vector<std::vector<size_t>>& adjacency) {
  const size_t wards = column.values.size();
  assert(adjacency.empty() || adjacency.size() == wards);

  double sum = 0;
  size_t observed = 0;
  for (const auto& value : column.values) {
    if (value) {
      sum += *value;
      ++observed;
    }
  }
  if (observed == 0) {
    return AnalysisError{"Column '" + column.name + "' has no values to impute from"};
  }
  const double column_mean = sum / static_cast<double>(observed);

  ImputedColumn imputed;
  imputed.name = column.name;
  imputed.values.resize(wards);
  for (size_t i = 0; i < wards; ++i) {
    if (column.values[i]) {
      imputed.values[i] = *column.values[i];
      continue;
    }
    double neighbour_sum = 0;
    size_t neighbour_count = 0;
    if (!adjacency.empty()) {
      for (size_t neighbour : adjacency[i]) {
        assert(neighbour < wards);
        if (const auto& value = column.values[neighbour]) {
          neighbour_sum += *value;
          ++neighbour_count;
        }
      }
    }
    if (neighbour_count > 0) {
      imputed.values[i] = neighbour_sum / static_cast<double>(neighbour_count);
      ++imputed.from_neighbours;
    } else {
      imputed.values[i] = column_mean;
      ++imputed.from_column_mean;
    }
  }
  return imputed;
}

}  // namespace stickyproxy::backend
