#include "backend/analysis/ranking.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace stickyproxy::backend {
namespace {

using Ranks = std::vector<size_t>;

std::vector<RiskCategory> thirds(size_t wards) {
  Ranks ranks;
  for (size_t r = 1; r <= wards; ++r) ranks.push_back(r);
  return categoriesByThirds(ranks);
}

size_t count(const std::vector<RiskCategory>& categories, RiskCategory wanted) {
  return static_cast<size_t>(std::count(categories.begin(), categories.end(), wanted));
}

TEST_CASE("rank 1 is the highest score", "[analysis]") {
  CHECK(rankDescending({0.2, 0.9, 0.5}, {"a", "b", "c"}) == Ranks{3, 1, 2});
  CHECK(rankDescending({-1.0}, {"a"}) == Ranks{1});
  CHECK(rankDescending({}, {}).empty());
}

TEST_CASE("equal scores are ranked by ward key, whatever the row order", "[analysis]") {
  CHECK(rankDescending({0.5, 0.5, 0.9, 0.5}, {"K3", "K1", "K0", "K2"}) == Ranks{4, 2, 1, 3});
  CHECK(rankDescending({0.5, 0.5}, {"B", "A"}) == Ranks{2, 1});
  CHECK(rankDescending({0.5, 0.5}, {"A", "B"}) == Ranks{1, 2});
}

TEST_CASE("wardsByRank inverts a ranking", "[analysis]") {
  CHECK(wardsByRank({3, 1, 2}) == Ranks{1, 2, 0});
}

TEST_CASE("thirds split evenly when the count divides by three", "[analysis]") {
  using enum RiskCategory;
  CHECK(thirds(3) == std::vector<RiskCategory>{kHigh, kMedium, kLow});
  CHECK(thirds(6) == std::vector<RiskCategory>{kHigh, kHigh, kMedium, kMedium, kLow, kLow});
}

TEST_CASE("remainder wards go to the higher categories first", "[analysis]") {
  using enum RiskCategory;
  CHECK(thirds(1) == std::vector<RiskCategory>{kHigh});
  CHECK(thirds(2) == std::vector<RiskCategory>{kHigh, kMedium});
  CHECK(thirds(4) == std::vector<RiskCategory>{kHigh, kHigh, kMedium, kLow});
  CHECK(thirds(5) == std::vector<RiskCategory>{kHigh, kHigh, kMedium, kMedium, kLow});
  const auto seven = thirds(7);
  CHECK(count(seven, kHigh) == 3);
  CHECK(count(seven, kMedium) == 2);
  CHECK(count(seven, kLow) == 2);
  const auto many = thirds(500);
  CHECK(count(many, kHigh) == 167);
  CHECK(count(many, kMedium) == 167);
  CHECK(count(many, kLow) == 166);
}

TEST_CASE("categories follow the rank, not the row", "[analysis]") {
  using enum RiskCategory;
  CHECK(categoriesByThirds({3, 1, 2}) == std::vector<RiskCategory>{kLow, kHigh, kMedium});
}

TEST_CASE("category labels are the ones users see", "[analysis]") {
  CHECK(riskCategoryLabel(RiskCategory::kHigh) == "High Risk");
  CHECK(riskCategoryLabel(RiskCategory::kMedium) == "Medium Risk");
  CHECK(riskCategoryLabel(RiskCategory::kLow) == "Low Risk");
}

}  // namespace
}  // namespace stickyproxy::backend
