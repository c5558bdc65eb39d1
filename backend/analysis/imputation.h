// Filling missing ward values from neighbouring wards.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "backend/data/data_status.h"
#include "backend/analysis/ward_table.h"

namespace stickyproxy::backend {

// A numeric column with every missing value filled in.
struct ImputedColumn {
  std::string name;
  std::vector<double> values;     // one per ward, all present
  size_t from_neighbours = 0;     // missing values filled with a neighbourhood mean
  size_t from_column_mean = 0;    // missing values filled with the column mean
};

// Fills each missing value of `column` with the mean of that column over the ward's
// neighbours (from `adjacency`) that have an observed value; when none has one (or there is no
// adjacency), with the mean of all observed values of the column. Only observed values feed
// the means, never values imputed earlier, so the result does not depend on ward order.
// A neighbour listed twice counts twice; a ward listed as its own neighbour adds nothing, as
// its value is missing.
// `adjacency` is empty or has one entry per value, with indexes in range (validateWardTable).
// Fails when the column has no observed value at all.
Expected<ImputedColumn> imputeColumn(const NumericColumn& column,
                                     const std::vector<std::vector<size_t>>& adjacency);

}  // namespace stickyproxy::backend
