#include "backend/analysis/composite_models.h"

#include <algorithm>
#include <cstddef>
#include <numeric>

namespace stickyproxy::backend {

size_t compositeModelCount(size_t variable_count) {
  assert(variable_count < 64);
  if (variable_count < 2) return 0;
  return (size_t{1} << variable_count) - variable_count - 1;
}

std::vector<CompositeModel> buildCompositeModels(const std::vector<std::string>& variables) {
  const size_t n = variables.size();
  std::vector<CompositeModel> models;
  models.reserve(compositeModelCount(n));
  std::vector<size_t> picked;
  for (size_t size = 2; size <= n; ++size) {
    // Walk the size-element combinations in lexicographic order: bump the rightmost position
    // that can still move, then reset the positions after it to follow consecutively.
    picked.resize(size);
    std::iota(picked.begin(), picked.end(), size_t{0});
    while (true) {
      CompositeModel model;
      model.name = "model_" + std::to_string(models.size() + 1);
      model.variables = picked;
      for (size_t v : picked) {
        if (!model.formula.empty()) model.formula += " + ";
        model.formula += variables[v];
      }
      models.push_back(std::move(model));

      size_t i = size;
      while (i > 0 && picked[i - 1] == n - size + (i - 1)) --i;
      if (i == 0) break;
      ++picked[i - 1];
      for (size_t j = i; j < size; ++j) picked[j] = picked[j - 1] + 1;
    }
  }
  return models;
}

ModelScores scoreCompositeModels(const std::vector<std::vector<double>>& normalized,
                                 const std::vector<CompositeModel>& models) {
  const size_t wards = normalized.empty() ? 0 : normalized.front().size();
  ModelScores scores(wards, models.size());
  for (size_t m = 0; m < models.size(); ++m) {
    const std::vector<size_t>& vars = models[m].variables;
    const double weight = 1.0 / static_cast<double>(vars.size());
    for (size_t w = 0; w < wards; ++w) {
      double sum = 0;
      for (size_t v : vars) sum += normalized[v][w];
      scores.at(w, m) = sum * weight;
    }
  }
  return scores;
}

std::vector<double> medianScores(const ModelScores& scores) {
  const size_t models = scores.modelCount();
  std::vector<double> medians(scores.wardCount(), 0.0);
  if (models == 0) return medians;
  std::vector<double> scratch(models);
  const size_t upper = models / 2;
  for (size_t w = 0; w < scores.wardCount(); ++w) {
    std::copy_n(scores.row(w), models, scratch.begin());
    const auto upper_it = scratch.begin() + static_cast<std::ptrdiff_t>(upper);
    std::nth_element(scratch.begin(), upper_it, scratch.end());
    double median = *upper_it;
    if (models % 2 == 0) {
      // nth_element leaves the smaller half before upper_it; its maximum is the lower middle.
      median = (median + *std::max_element(scratch.begin(), upper_it)) / 2.0;
    }
    medians[w] = median;
  }
  return medians;
}

}  // namespace stickyproxy::backend
