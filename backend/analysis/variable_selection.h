// Which columns an analysis uses.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "backend/data/data_status.h"
#include "backend/analysis/ward_table.h"

namespace stickyproxy::backend {

// Default variables, most wanted first: the two direct measures of malaria burden (parasite
// prevalence, under-5 test positivity), then the drivers that the real app's users look at
// first — rainfall (breeding sites), access to water, housing — then vegetation, terrain and
// urbanisation, then the remaining environmental indices of the synthetic data.
inline constexpr std::array<std::string_view, 14> kDefaultVariablePreference = {
    "pfpr",      "u5_tpr_rdt", "mean_rainfall", "distance_to_water", "housing_quality",
    "mean_EVI",  "mean_NDVI",  "elevation",     "urbanPercentage",   "NDWI",
    "NDMI",      "mean_soil_wetness", "temp_mean", "avgRAD"};

// Five default variables give 26 composite models: enough combinations for a stable median
// while keeping burden, climate, access and housing all represented, as the real app's
// default analysis did.
inline constexpr size_t kDefaultVariableCount = 5;

// Composite models grow as 2^n, and the variable list comes from the user: 10 variables are
// 1013 models, still a few milliseconds for 500 wards.
inline constexpr size_t kMaxVariables = 10;

// Resolves the variables an analysis uses, as names of `table`'s numeric columns.
//
// With `requested` non-empty, each name must be a numeric column of `table`, matched exactly,
// else case-insensitively when that match is unique; repeats are dropped (first kept). Errors
// name the offending variable: unknown, not numeric, ambiguous.
// With `requested` empty, takes the first `default_count` columns of kDefaultVariablePreference
// (same matching) that exist and have at least one observed value, in preference order.
//
// Fails with fewer than 2 variables (a composite model combines at least two) or more than
// kMaxVariables. Whether a requested column has values is checked later, by imputation.
Expected<std::vector<std::string>> selectVariables(const WardTable& table,
                                                   const std::vector<std::string>& requested,
                                                   size_t default_count = kDefaultVariableCount);

}  // namespace stickyproxy::backend
