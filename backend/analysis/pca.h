// Principal component analysis of the selected variables: the analysis' second opinion.
#pragma once

#include <cstddef>
#include <vector>

namespace stickyproxy::backend {

// At most this many leading components are weighted into the PCA score.
inline constexpr size_t kMaxPcaComponents = 3;

struct PcaResult {
  // Share of the total variance each retained component explains, largest first;
  // min(kMaxPcaComponents, variable count) entries. All 0 when no variable varies.
  std::vector<double> explained_variance_ratio;
  // loadings[c][v]: weight of variable v in component c, each component of unit length.
  // Signs are fixed so that the entry of largest magnitude is positive (the first such entry
  // when several are equal to within 1e-9), as eigenvectors are only defined up to sign.
  std::vector<std::vector<double>> loadings;
  // Per ward: sum over retained components c of explained_variance_ratio[c] * (z . loadings[c]),
  // where z is the ward's vector of standardised values.
  std::vector<double> scores;
};

// Runs PCA on `columns[v][w]` (variable v, ward w; equal-length inner vectors, finite values).
// Each variable is standardised to z-scores with the population standard deviation; a variable
// with zero variance standardises to all 0 and so contributes nothing. The components are the
// eigenvectors of the correlation matrix (the covariance of the z-scores), from Eigen's
// SelfAdjointEigenSolver. With several equal eigenvalues the components within that eigenspace
// are whatever the solver returns: deterministic for a given build, not unique mathematically.
PcaResult computePca(const std::vector<std::vector<double>>& columns);

}  // namespace stickyproxy::backend
