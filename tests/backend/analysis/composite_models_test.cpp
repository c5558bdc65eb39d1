#include "backend/analysis/composite_models.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace stickyproxy::backend {
namespace {

std::vector<std::string> variableNames(size_t count) {
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) names.push_back(std::string(1, static_cast<char>('a' + i)));
  return names;
}

TEST_CASE("n variables give 2^n - n - 1 composite models", "[analysis]") {
  const std::vector<std::pair<size_t, size_t>> expected = {{2, 1}, {3, 4}, {4, 11}, {5, 26},
                                                           {6, 57}};
  for (const auto& [variables, models] : expected) {
    INFO(variables << " variables");
    CHECK(compositeModelCount(variables) == models);
    const auto built = buildCompositeModels(variableNames(variables));
    CHECK(built.size() == models);
    std::set<std::vector<size_t>> distinct;
    for (const CompositeModel& model : built) {
      CHECK(model.variables.size() >= 2);
      distinct.insert(model.variables);
    }
    CHECK(distinct.size() == models);
  }
  CHECK(compositeModelCount(0) == 0);
  CHECK(compositeModelCount(1) == 0);
  CHECK(buildCompositeModels(variableNames(1)).empty());
}

TEST_CASE("models come smallest first, then in lexicographic order", "[analysis]") {
  const auto models = buildCompositeModels({"pfpr", "mean_rainfall", "elevation"});
  REQUIRE(models.size() == 4);
  CHECK(models[0].name == "model_1");
  CHECK(models[0].formula == "pfpr + mean_rainfall");
  CHECK(models[0].variables == std::vector<size_t>{0, 1});
  CHECK(models[1].formula == "pfpr + elevation");
  CHECK(models[2].formula == "mean_rainfall + elevation");
  CHECK(models[3].name == "model_4");
  CHECK(models[3].formula == "pfpr + mean_rainfall + elevation");
  CHECK(models[3].variables == std::vector<size_t>{0, 1, 2});

  const auto five = buildCompositeModels(variableNames(5));
  CHECK(five[9].formula == "d + e");            // the last pair
  CHECK(five[10].formula == "a + b + c");       // the first triple
  CHECK(five[25].formula == "a + b + c + d + e");
}

TEST_CASE("3 wards, 2 variables: the single model is the mean of both", "[analysis]") {
  // Normalised values by hand: a = [0, 0.5, 1], b = [1, 0, 0.5].
  const std::vector<std::vector<double>> normalized = {{0.0, 0.5, 1.0}, {1.0, 0.0, 0.5}};
  const auto models = buildCompositeModels({"a", "b"});
  const ModelScores scores = scoreCompositeModels(normalized, models);
  REQUIRE(scores.wardCount() == 3);
  REQUIRE(scores.modelCount() == 1);
  CHECK(scores.at(0, 0) == 0.5);
  CHECK(scores.at(1, 0) == 0.25);
  CHECK(scores.at(2, 0) == 0.75);
  CHECK(medianScores(scores) == std::vector<double>{0.5, 0.25, 0.75});
}

TEST_CASE("the median of an even number of models averages the middle two", "[analysis]") {
  // 3 variables, 4 models: {a,b}, {a,c}, {b,c}, {a,b,c}.
  const std::vector<std::vector<double>> normalized = {
      {0.0, 1.0, 0.2}, {1.0, 1.0, 0.4}, {0.5, 0.0, 0.9}};
  const ModelScores scores =
      scoreCompositeModels(normalized, buildCompositeModels({"a", "b", "c"}));
  // Ward 0 (0, 1, .5):  .5, .25, .75, .5       -> sorted .25 .5 .5 .75 -> .5
  // Ward 1 (1, 1, 0):   1, .5, .5, 2/3         -> (.5 + 2/3) / 2
  // Ward 2 (.2, .4, .9): .3, .55, .65, .5      -> (.5 + .55) / 2
  CHECK(scores.at(1, 3) == Approx(2.0 / 3.0));
  const auto medians = medianScores(scores);
  CHECK(medians[0] == Approx(0.5));
  CHECK(medians[1] == Approx((0.5 + 2.0 / 3.0) / 2));
  CHECK(medians[2] == Approx(0.525));
}

TEST_CASE("the median of an odd number of models is the middle one", "[analysis]") {
  ModelScores scores(2, 3);
  scores.at(0, 0) = 3;
  scores.at(0, 1) = 1;
  scores.at(0, 2) = 2;
  scores.at(1, 0) = 0.5;
  scores.at(1, 1) = 0.5;
  scores.at(1, 2) = 0.1;
  CHECK(medianScores(scores) == std::vector<double>{2, 0.5});
}

}  // namespace
}  // namespace stickyproxy::backend
