// Latencies in log-spaced buckets: constant memory whatever the count, quantiles within about 3%.
#pragma once

#include <array>
#include <cstdint>

namespace stickyproxy::load {

// Buckets of 1/16 octave from 1 microsecond up to about 2^30 microseconds (18 minutes); longer
// values land in the last bucket, shorter ones in the first. quantile() answers a bucket's upper
// bound, clamped to the largest value recorded, so it never understates.
class LatencyHistogram {
 public:
  static constexpr int kStepsPerOctave = 16;
  static constexpr int kOctaves = 30;
  static constexpr int kBuckets = kStepsPerOctave * kOctaves;

  void record(double seconds);
  void merge(const LatencyHistogram& other);
  // Nearest-rank quantile in seconds (0 when empty); `fraction` in [0, 1].
  double quantile(double fraction) const;
  uint64_t count() const { return count_; }
  double max() const { return max_; }
  double sum() const { return sum_; }

  // The bucket `seconds` falls in, and a bucket's upper bound in seconds.
  static int bucketOf(double seconds);
  static double upperBound(int bucket);

 private:
  std::array<uint32_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  double max_ = 0;
  double sum_ = 0;
};

}  // namespace stickyproxy::load
