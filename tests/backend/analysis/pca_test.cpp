#include "backend/analysis/pca.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace stickyproxy::backend {
namespace {

const double kInvSqrt2 = 1.0 / std::sqrt(2.0);

TEST_CASE("perfectly correlated columns: one component explains everything", "[analysis]") {
  const PcaResult pca = computePca({{1, 2, 3, 4}, {2, 4, 6, 8}});
  REQUIRE(pca.explained_variance_ratio.size() == 2);
  CHECK(pca.explained_variance_ratio[0] == Approx(1.0));
  CHECK(pca.explained_variance_ratio[1] == Approx(0.0).margin(1e-12));
  CHECK(pca.loadings[0][0] == Approx(kInvSqrt2));
  CHECK(pca.loadings[0][1] == Approx(kInvSqrt2));
  // z of 1..4 (mean 2.5, population sd sqrt(1.25)); score = (z + z) / sqrt(2) = sqrt(2) z.
  const double sd = std::sqrt(1.25);
  for (size_t w = 0; w < 4; ++w) {
    const double z = (static_cast<double>(w + 1) - 2.5) / sd;
    CHECK(pca.scores[w] == Approx(std::sqrt(2.0) * z));
  }
}

TEST_CASE("perfectly anti-correlated columns load with opposite signs", "[analysis]") {
  const PcaResult pca = computePca({{1, 2, 3, 4}, {8, 6, 4, 2}});
  CHECK(pca.explained_variance_ratio[0] == Approx(1.0));
  // Equal magnitudes: the first entry is the one made positive.
  CHECK(pca.loadings[0][0] == Approx(kInvSqrt2));
  CHECK(pca.loadings[0][1] == Approx(-kInvSqrt2));
}

TEST_CASE("a 2-D case with correlation 0.5 decomposes as computed by hand", "[analysis]") {
  // x = 1,2,3 and y = 1,3,2: both have variance 2/3, covariance 1/3, so r = 0.5. The
  // correlation matrix [[1, .5], [.5, 1]] has eigenvalues 1.5 and 0.5 with eigenvectors
  // (1, 1)/sqrt2 and (1, -1)/sqrt2: ratios 0.75 and 0.25.
  const PcaResult pca = computePca({{1, 2, 3}, {1, 3, 2}});
  REQUIRE(pca.explained_variance_ratio.size() == 2);
  CHECK(pca.explained_variance_ratio[0] == Approx(0.75));
  CHECK(pca.explained_variance_ratio[1] == Approx(0.25));
  CHECK(pca.loadings[0][0] == Approx(kInvSqrt2));
  CHECK(pca.loadings[0][1] == Approx(kInvSqrt2));
  CHECK(pca.loadings[1][0] == Approx(kInvSqrt2));
  CHECK(pca.loadings[1][1] == Approx(-kInvSqrt2));
  // z = +-sqrt(1.5) or 0. Score = .75 (zx + zy)/sqrt2 + .25 (zx - zy)/sqrt2.
  const double s = std::sqrt(1.5);
  const auto score = [&](double zx, double zy) {
    return 0.75 * (zx + zy) * kInvSqrt2 + 0.25 * (zx - zy) * kInvSqrt2;
  };
  CHECK(pca.scores[0] == Approx(score(-s, -s)));
  CHECK(pca.scores[1] == Approx(score(0, s)));
  CHECK(pca.scores[2] == Approx(score(s, 0)));
}

TEST_CASE("a zero-variance column contributes nothing", "[analysis]") {
  const PcaResult pca = computePca({{1, 2, 3}, {5, 5, 5}});
  CHECK(pca.explained_variance_ratio[0] == Approx(1.0));
  CHECK(pca.explained_variance_ratio[1] == Approx(0.0).margin(1e-12));
  CHECK(pca.loadings[0][0] == Approx(1.0));
  CHECK(pca.loadings[0][1] == Approx(0.0).margin(1e-12));
  const double z = std::sqrt(1.5);  // 1..3: mean 2, population sd sqrt(2/3)
  CHECK(pca.scores[0] == Approx(-z));
  CHECK(pca.scores[1] == Approx(0.0).margin(1e-12));
  CHECK(pca.scores[2] == Approx(z));
}

TEST_CASE("only constant columns give zero scores and zero ratios", "[analysis]") {
  const PcaResult pca = computePca({{2, 2}, {7, 7}});
  CHECK(pca.explained_variance_ratio == std::vector<double>{0, 0});
  CHECK(pca.scores == std::vector<double>{0, 0});
}

TEST_CASE("at most three unit-length components, largest first", "[analysis]") {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<std::vector<double>> columns(5, std::vector<double>(200));
  for (size_t w = 0; w < 200; ++w) {
    const double common = noise(rng);
    for (size_t v = 0; v < 5; ++v) {
      columns[v][w] = common * static_cast<double>(v) + noise(rng);
    }
  }
  const PcaResult pca = computePca(columns);
  REQUIRE(pca.explained_variance_ratio.size() == 3);
  REQUIRE(pca.loadings.size() == 3);
  CHECK(pca.explained_variance_ratio[0] >= pca.explained_variance_ratio[1]);
  CHECK(pca.explained_variance_ratio[1] >= pca.explained_variance_ratio[2]);
  const double kept = std::accumulate(pca.explained_variance_ratio.begin(),
                                      pca.explained_variance_ratio.end(), 0.0);
  CHECK(kept < 1.0);
  CHECK(kept > 0.6);
  for (const auto& loading : pca.loadings) {
    REQUIRE(loading.size() == 5);
    const double norm = std::sqrt(std::inner_product(loading.begin(), loading.end(),
                                                     loading.begin(), 0.0));
    CHECK(norm == Approx(1.0));
    // The sign convention: the largest-magnitude loading is positive.
    const auto by_magnitude = [](double a, double b) { return std::abs(a) < std::abs(b); };
    const auto largest = std::max_element(loading.begin(), loading.end(), by_magnitude);
    CHECK(*largest > 0);
  }
  CHECK(pca.scores.size() == 200);
}

TEST_CASE("one ward or no columns give zero scores", "[analysis]") {
  CHECK(computePca({{4}, {9}}).scores == std::vector<double>{0});
  CHECK(computePca({}).scores.empty());
}

}  // namespace
}  // namespace stickyproxy::backend
