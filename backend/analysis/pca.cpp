#include "backend/analysis/pca.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace stickyproxy::backend {
namespace {

constexpr double kLoadingTieTolerance = 1e-9;

// Eigenvectors are defined only up to sign; flip so the largest-magnitude entry is positive,
// which makes the scores' direction reproducible across runs and Eigen versions.
void fixSign(Eigen::VectorXd& component) {
  const double largest = component.cwiseAbs().maxCoeff();
  for (Eigen::Index i = 0; i < component.size(); ++i) {
    if (std::abs(component(i)) >= largest - kLoadingTieTolerance) {
      if (component(i) < 0) component = -component;
      return;
    }
  }
}

}  // namespace

PcaResult computePca(const std::vector<std::vector<double>>& columns) {
  PcaResult result;
  const auto vars = static_cast<Eigen::Index>(columns.size());
  const auto wards = static_cast<Eigen::Index>(columns.empty() ? 0 : columns.front().size());
  result.scores.assign(static_cast<size_t>(wards), 0.0);
  if (vars == 0 || wards == 0) return result;

  Eigen::MatrixXd z(wards, vars);
  for (Eigen::Index v = 0; v < vars; ++v) {
    const std::vector<double>& column = columns[static_cast<size_t>(v)];
    assert(column.size() == static_cast<size_t>(wards));
    double mean = 0;
    for (double x : column) mean += x;
    mean /= static_cast<double>(wards);
    double variance = 0;
    for (double x : column) variance += (x - mean) * (x - mean);
    variance /= static_cast<double>(wards);
    const double sd = std::sqrt(variance);
    for (Eigen::Index w = 0; w < wards; ++w) {
      z(w, v) = sd > 0 ? (column[static_cast<size_t>(w)] - mean) / sd : 0.0;
    }
  }

  const Eigen::MatrixXd correlation = (z.transpose() * z) / static_cast<double>(wards);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(correlation);
  // The solver sorts eigenvalues ascending; rounding can leave null directions slightly
  // negative, and variance cannot be.
  const Eigen::VectorXd eigenvalues = solver.eigenvalues().cwiseMax(0.0);
  const double total = eigenvalues.sum();

  const auto kept = std::min<Eigen::Index>(static_cast<Eigen::Index>(kMaxPcaComponents), vars);
  Eigen::VectorXd weighted_loadings = Eigen::VectorXd::Zero(vars);
  for (Eigen::Index c = 0; c < kept; ++c) {
    const Eigen::Index source = vars - 1 - c;
    Eigen::VectorXd component = solver.eigenvectors().col(source);
    fixSign(component);
    const double ratio = total > 0 ? eigenvalues(source) / total : 0.0;
    result.explained_variance_ratio.push_back(ratio);
    result.loadings.emplace_back(component.data(), component.data() + component.size());
    weighted_loadings += ratio * component;
  }

  // sum_c ratio_c * (z . v_c) == z . (sum_c ratio_c * v_c): one matrix-vector product.
  const Eigen::VectorXd scores = z * weighted_loadings;
  for (Eigen::Index w = 0; w < wards; ++w) result.scores[static_cast<size_t>(w)] = scores(w);
  return result;
}

}  // namespace stickyproxy::backend
