#include "backend/analysis/ranking.h"

#include <algorithm>
#include <cassert>
#include <numeric>

namespace stickyproxy::backend {

std::string_view riskCategoryLabel(RiskCategory category) {
  switch (category) {
    case RiskCategory::kHigh:
      return "High Risk";
    case RiskCategory::kMedium:
      return "Medium Risk";
    case RiskCategory::kLow:
      return "Low Risk";
  }
  return "Low Risk";
}

std::vector<size_t> rankDescending(const std::vector<double>& scores,
                                   const std::vector<std::string>& keys) {
  assert(scores.size() == keys.size());
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return keys[a] < keys[b];
  });
  std::vector<size_t> ranks(scores.size());
  for (size_t position = 0; position < order.size(); ++position) {
    ranks[order[position]] = position + 1;
  }
  return ranks;
}

std::vector<size_t> wardsByRank(const std::vector<size_t>& ranks) {
  std::vector<size_t> wards(ranks.size());
  for (size_t w = 0; w < ranks.size(); ++w) {
    assert(ranks[w] >= 1 && ranks[w] <= ranks.size());
    wards[ranks[w] - 1] = w;
  }
  return wards;
}

RiskCategory categoryForRank(size_t rank, size_t ward_count) {
  assert(rank >= 1 && rank <= ward_count);
  const size_t high = (ward_count + 2) / 3;
  const size_t medium = (ward_count - high + 1) / 2;
  if (rank <= high) return RiskCategory::kHigh;
  if (rank <= high + medium) return RiskCategory::kMedium;
  return RiskCategory::kLow;
}

std::vector<RiskCategory> categoriesByThirds(const std::vector<size_t>& ranks) {
  std::vector<RiskCategory> categories;
  categories.reserve(ranks.size());
  for (size_t rank : ranks) categories.push_back(categoryForRank(rank, ranks.size()));
  return categories;
}

}  // namespace stickyproxy::backend
