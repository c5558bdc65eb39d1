// The analysis engine's input: one row per ward, numeric columns, and which wards touch.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

// One numeric column of the uploaded CSV. `values[i]` belongs to ward i; nullopt is a missing
// value (empty cell, NA).
struct NumericColumn {
  std::string name;
  std::vector<std::optional<double>> values;
};

// Ward data as the data layer hands it to the analysis. Ward i is described by keys[i],
// names[i], every column's values[i] and adjacency[i].
struct WardTable {
  // Unique key per ward: the WardCode, or "<WardCode>_<WardName>" where the data layer had to
  // disambiguate. Ranking ties are broken by this key, so results do not depend on row order
  // for tied wards.
  std::vector<std::string> keys;
  // Display names (WardName), parallel to `keys`. Need not be unique.
  std::vector<std::string> names;
  // The numeric columns, in the CSV's column order.
  std::vector<NumericColumn> columns;
  // Names of the CSV's non-numeric columns. Only used to say "is not numeric" rather than
  // "unknown" when such a column is selected.
  std::vector<std::string> text_columns;
  // adjacency[i] lists the indexes of the wards sharing a border with ward i. Either empty
  // (no shapes: imputation falls back to column means) or one list per ward.
  std::vector<std::vector<size_t>> adjacency;

  size_t wardCount() const { return keys.size(); }

  // The numeric column named exactly `name`, or nullptr.
  const NumericColumn* findColumn(std::string_view name) const;
};

// Checks the table's shape before any arithmetic: at least one ward, as many names as keys,
// unique non-empty keys, unique column names, one value per ward in every column, finite
// values, adjacency empty or one list per ward with indexes in range. Returns the first
// problem found (kBadAnalysisInput), or success when the table is usable.
DataStatus validateWardTable(const WardTable& table);

}  // namespace stickyproxy::backend
