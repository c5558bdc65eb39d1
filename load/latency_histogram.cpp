#include "load/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace stickyproxy::load {

int LatencyHistogram::bucketOf(double seconds) {
  double micros = seconds * 1e6;
  if (!(micros > 1.0)) return 0;
  int bucket = static_cast<int>(std::ceil(std::log2(micros) * kStepsPerOctave)) - 1;
  return std::clamp(bucket, 0, kBuckets - 1);
}

double LatencyHistogram::upperBound(int bucket) {
  return std::exp2(static_cast<double>(bucket + 1) / kStepsPerOctave) / 1e6;
}

void LatencyHistogram::record(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  ++counts_[static_cast<size_t>(bucketOf(seconds))];
  ++count_;
  sum_ += seconds;
  max_ = std::max(max_, seconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::quantile(double fraction) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int bucket = 0; bucket < kBuckets; ++bucket) {
    seen += counts_[static_cast<size_t>(bucket)];
    if (seen >= rank) return std::min(upperBound(bucket), max_);
  }
  return max_;
}

}  // namespace stickyproxy::load
