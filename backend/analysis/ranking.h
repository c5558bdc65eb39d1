// Ranking wards by score and splitting them into risk thirds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace stickyproxy::backend {

enum class RiskCategory { kHigh, kMedium, kLow };

// "High Risk", "Medium Risk" or "Low Risk", as shown to users and written to the result files.
std::string_view riskCategoryLabel(RiskCategory category);

// Ranks of `scores` from the highest (rank 1) down, one per ward, all distinct. Equal scores
// are ordered by ascending `keys` (the unique ward keys, parallel to `scores`), so the same data
// always gives the same ranks whatever the row order. Scores must not be NaN.
std::vector<size_t> rankDescending(const std::vector<double>& scores,
                                   const std::vector<std::string>& keys);

// The ward indexes ordered by rank: result[r - 1] is the ward with rank r.
std::vector<size_t> wardsByRank(const std::vector<size_t>& ranks);

// The category of 1-based `rank` among `ward_count` wards, by thirds of the ranking: High Risk
// for the first third, Medium Risk for the next, Low Risk for the rest. When the count is not
// divisible by 3 the extra wards go to the higher categories first: 4 wards -> 2/1/1, 5 -> 2/2/1
// (High = ceil(n/3), Medium = ceil((n - High)/2)). Erring towards higher risk keeps a
// borderline ward on the list that gets interventions.
RiskCategory categoryForRank(size_t rank, size_t ward_count);

// categoryForRank() for every ward of a ranking.
std::vector<RiskCategory> categoriesByThirds(const std::vector<size_t>& ranks);

}  // namespace stickyproxy::backend
