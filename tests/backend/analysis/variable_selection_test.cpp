#include "backend/analysis/variable_selection.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

namespace stickyproxy::backend {
namespace {

using Names = std::vector<std::string>;

WardTable tableWith(const Names& numeric, const Names& text = {"WardName"}) {
  WardTable table;
  table.keys = {"K1", "K2"};
  table.names = {"One", "Two"};
  for (const std::string& name : numeric) table.columns.push_back({name, {1.0, 2.0}});
  table.text_columns = text;
  return table;
}

TEST_CASE("default variables follow the preference list, not the column order", "[analysis]") {
  const WardTable table = tableWith({"elevation", "mean_EVI", "housing_quality", "population",
                                     "distance_to_water", "mean_rainfall", "u5_tpr_rdt", "pfpr"});
  const auto selected = selectVariables(table, {});
  REQUIRE(selected.ok());
  CHECK(selected.value() == Names{"pfpr", "u5_tpr_rdt", "mean_rainfall", "distance_to_water",
                                  "housing_quality"});
}

TEST_CASE("default variables skip absent and all-missing columns", "[analysis]") {
  WardTable table = tableWith({"pfpr", "u5_tpr_rdt", "mean_EVI", "elevation", "temp_mean"});
  table.columns[1].values = {std::nullopt, std::nullopt};
  const auto selected = selectVariables(table, {});
  REQUIRE(selected.ok());
  CHECK(selected.value() == Names{"pfpr", "mean_EVI", "elevation", "temp_mean"});

  const auto three = selectVariables(table, {}, 3);
  REQUIRE(three.ok());
  CHECK(three.value() == Names{"pfpr", "mean_EVI", "elevation"});
}

TEST_CASE("default variables match column names ignoring case", "[analysis]") {
  const auto selected = selectVariables(tableWith({"PfPR", "Mean_Rainfall"}), {});
  REQUIRE(selected.ok());
  CHECK(selected.value() == Names{"PfPR", "Mean_Rainfall"});
}

TEST_CASE("fewer than two default variables is an error", "[analysis]") {
  const auto selected = selectVariables(tableWith({"pfpr", "population"}), {});
  REQUIRE_FALSE(selected.ok());
  CHECK(selected.error().find("fewer than 2 of the default variables") != std::string::npos);
}

TEST_CASE("requested variables keep the user's order and canonical names", "[analysis]") {
  const WardTable table = tableWith({"pfpr", "mean_rainfall", "elevation"});
  const auto selected = selectVariables(table, {"elevation", "PFPR", "pfpr"});
  REQUIRE(selected.ok());
  CHECK(selected.value() == Names{"elevation", "pfpr"});
}

TEST_CASE("requested variables are validated by name", "[analysis]") {
  const WardTable table = tableWith({"pfpr", "mean_rainfall", "Rain", "rain"});

  const auto unknown = selectVariables(table, {"pfpr", "pfprr"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error() == "Unknown variable 'pfprr'");

  const auto text = selectVariables(table, {"pfpr", "WardName"});
  REQUIRE_FALSE(text.ok());
  CHECK(text.error() == "Variable 'WardName' is not numeric");

  const auto ambiguous = selectVariables(table, {"pfpr", "RAIN"});
  REQUIRE_FALSE(ambiguous.ok());
  CHECK(ambiguous.error() == "Variable 'RAIN' matches several columns that differ only in case");

  const auto exact = selectVariables(table, {"pfpr", "rain"});
  REQUIRE(exact.ok());
  CHECK(exact.value() == Names{"pfpr", "rain"});
}

TEST_CASE("one requested variable is too few for a composite model", "[analysis]") {
  const WardTable table = tableWith({"pfpr", "mean_rainfall"});
  const auto one = selectVariables(table, {"pfpr"});
  REQUIRE_FALSE(one.ok());
  CHECK(one.error() == "At least 2 variables are needed to build composite models; got 1 (pfpr)");

  const auto repeated = selectVariables(table, {"pfpr", "pfpr"});
  REQUIRE_FALSE(repeated.ok());
  CHECK(repeated.error() ==
        "At least 2 variables are needed to build composite models; got 1 (pfpr)");
}

TEST_CASE("more than kMaxVariables requested variables are refused", "[analysis]") {
  Names names;
  for (size_t i = 0; i <= kMaxVariables; ++i) names.push_back("v" + std::to_string(i));
  const WardTable table = tableWith(names);
  const auto selected = selectVariables(table, names);
  REQUIRE_FALSE(selected.ok());
  CHECK(selected.error() == "At most 10 variables can be analysed at once; got 11");

  names.pop_back();
  CHECK(selectVariables(table, names).ok());
}

}  // namespace
}  // namespace stickyproxy::backend
