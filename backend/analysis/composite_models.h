// Composite risk models: every combination of two or more variables, and each ward's median.
#pragma once

#include <cassert>
#include <cstddef>
#include <string>
#include <vector>

namespace stickyproxy::backend {

// One composite model: the mean of the normalised values of `variables`.
struct CompositeModel {
  std::string name;                // "model_1", "model_2", ... in generation order
  std::string formula;             // "pfpr + mean_rainfall"
  std::vector<size_t> variables;   // indexes into the analysis' variable list, ascending
};

// 2^n - n - 1: the subsets of n variables with at least two members (5 -> 26).
// Requires n < 64.
size_t compositeModelCount(size_t variable_count);

// Every combination of two or more of `variables`, smallest first, and within one size in
// lexicographic order of variable positions ({0,1}, {0,2}, ..., {1,2}, ...): the order the
// real app's itertools.combinations loop produced, so model_<i> means the same model there.
// Requires variables.size() < 64.
std::vector<CompositeModel> buildCompositeModels(const std::vector<std::string>& variables);

// Scores of every ward under every model, stored ward-major so one ward's scores are
// contiguous (the median reads them row by row).
class ModelScores {
 public:
  ModelScores() = default;
  ModelScores(size_t ward_count, size_t model_count)
      : ward_count_(ward_count), model_count_(model_count), scores_(ward_count * model_count) {}

  size_t wardCount() const { return ward_count_; }
  size_t modelCount() const { return model_count_; }

  double at(size_t ward, size_t model) const {
    assert(ward < ward_count_ && model < model_count_);
    return scores_[ward * model_count_ + model];
  }
  double& at(size_t ward, size_t model) {
    assert(ward < ward_count_ && model < model_count_);
    return scores_[ward * model_count_ + model];
  }
  // The model_count() scores of `ward`, in model order.
  const double* row(size_t ward) const { return scores_.data() + ward * model_count_; }

 private:
  size_t ward_count_ = 0;
  size_t model_count_ = 0;
  std::vector<double> scores_;
};

// Scores each ward under each model: the mean of the ward's normalised values over the
// model's variables. `normalized[v][w]` is variable v's normalised value for ward w; every
// inner vector has the same length (the ward count).
ModelScores scoreCompositeModels(const std::vector<std::vector<double>>& normalized,
                                 const std::vector<CompositeModel>& models);

// Each ward's median score over all models; with an even number of models, the mean of the
// two middle scores (26 models: the mean of the 13th and 14th). 0 when there are no models.
std::vector<double> medianScores(const ModelScores& scores);

}  // namespace stickyproxy::backend
