#include "load/latency_histogram.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using stickyproxy::load::LatencyHistogram;

TEST_CASE("histogram quantiles are within 5% of the exact ones and never below them", "[load]") {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> latency(std::log(0.05), 1.2);  // a long tail around 50 ms
  std::vector<double> values;
  LatencyHistogram histogram;
  for (int i = 0; i < 20000; ++i) {
    values.push_back(latency(rng));
    histogram.record(values.back());
  }
  std::sort(values.begin(), values.end());
  for (double fraction : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    double exact = values[static_cast<size_t>(std::ceil(fraction * values.size())) - 1];
    double estimate = histogram.quantile(fraction);
    CHECK(estimate >= exact);
    CHECK(estimate <= exact * 1.05);
  }
  CHECK(histogram.quantile(1.0) == values.back());
  CHECK(histogram.max() == values.back());
  CHECK(histogram.count() == values.size());
}

TEST_CASE("an empty histogram answers 0; odd values land in the edge buckets", "[load]") {
  LatencyHistogram histogram;
  CHECK(histogram.quantile(0.99) == 0);
  histogram.record(-1);
  histogram.record(std::nan(""));
  histogram.record(1e-9);
  CHECK(histogram.count() == 3);
  CHECK(histogram.quantile(1.0) == 1e-9);  // the largest value, exactly
  histogram.record(1e9);  // beyond the last bucket: counted there, max kept exactly
  CHECK(histogram.max() == 1e9);
  CHECK(histogram.quantile(1.0) <= 1e9);
  CHECK(histogram.quantile(1.0) >= LatencyHistogram::upperBound(LatencyHistogram::kBuckets - 2));
}

TEST_CASE("merged histograms hold both sets of values", "[load]") {
  LatencyHistogram fast, slow;
  for (int i = 0; i < 99; ++i) fast.record(0.001);
  slow.record(2.0);
  fast.merge(slow);
  CHECK(fast.count() == 100);
  CHECK(fast.quantile(0.99) < 0.0011);
  CHECK(fast.quantile(1.0) == 2.0);
  CHECK(fast.sum() == Approx(2.099));
}

TEST_CASE("bucket bounds grow by 1/16 octave and contain their values", "[load]") {
  for (double seconds : {0.000002, 0.0001234, 0.05, 1.0, 2.9, 3.0, 60.0}) {
    int bucket = LatencyHistogram::bucketOf(seconds);
    CHECK(seconds <= LatencyHistogram::upperBound(bucket) * (1 + 1e-12));
    CHECK(seconds > LatencyHistogram::upperBound(bucket - 1) * (1 - 1e-12));
    CHECK(LatencyHistogram::upperBound(bucket) / LatencyHistogram::upperBound(bucket - 1) == Approx(std::exp2(1.0 / 16)));
  }
}
