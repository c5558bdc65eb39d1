// A page of box plots: the spread of each ward's scores over the composite models.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/analysis/ranking.h"

namespace stickyproxy::backend {

struct BoxPlotWard {
  std::string name;
  std::vector<double> scores;  // one per model; NaN and infinities are ignored
  size_t rank = 0;             // 0 = not shown
  std::optional<RiskCategory> category;
};

// The five numbers a box shows.
struct BoxStats {
  size_t count = 0;  // finite scores
  double min = 0;
  double lower_quartile = 0;
  double median = 0;
  double upper_quartile = 0;
  double max = 0;
};

// The `p` quantile (0..1) of the ascending, non-empty `sorted`, by linear interpolation between
// closest ranks: with h = (n - 1) p, the value at floor(h) plus the fraction of h times the step
// to the next value. This is Hyndman & Fan's definition 7, the default of numpy.percentile, R's
// quantile() and Excel's QUARTILE.INC, so the numbers match what users check them with.
double interpolatedQuantile(const std::vector<double>& sorted, double p);

// The five numbers of the finite values of `scores` (any order); nullopt when there are none.
std::optional<BoxStats> boxStats(const std::vector<double>& scores);

// Self-contained HTML document: one horizontal box (min, lower quartile, median, upper quartile,
// max whiskers) per ward, wards in the given order (the caller passes them by rank), coloured by
// category, a shared axis from 0 to 1 (widened to the scores' range, on round ticks, when a score
// falls outside), the rank and ward name as labels, and on hover the ward's rank, category and
// five numbers in a tooltip (a title attribute per row as fallback without script). The axis
// stays visible while scrolling. All user text is escaped; the same input gives the same bytes.
std::string renderBoxPlotPage(std::string_view title, std::string_view subtitle,
                              const std::vector<BoxPlotWard>& wards);

}  // namespace stickyproxy::backend
