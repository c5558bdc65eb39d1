#include "backend/analysis/analysis_csv.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "tests/backend/analysis/synthetic_ward_table.h"

namespace stickyproxy::backend {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// A strict RFC 4180 reader for checking what the writers produce.
Rows parseCsv(std::string_view text) {
  Rows rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      ++i;
    } else {
      field += c;
    }
  }
  REQUIRE_FALSE(quoted);
  REQUIRE(field.empty());
  REQUIRE(row.empty());
  return rows;
}

// Three wards whose names need quoting; a = 0,2,4 and b = 4,0,2 normalise to exact binary
// fractions, so the single model's scores are exactly .5, .25 and .75.
WardTable awkwardNames() {
  WardTable table;
  table.keys = {"K1", "K2", "K3"};
  table.names = {"Kano, \"Old\" Town", "Line\nTwo", "Plain"};
  table.columns = {{"a", {0.0, 2.0, 4.0}}, {"b", {4.0, 0.0, 2.0}}};
  return table;
}

AnalysisResult analysed(const WardTable& table, std::vector<std::string> variables = {"a", "b"}) {
  auto result = runAnalysis(table, AnalysisOptions{std::move(variables)});
  REQUIRE(result.ok());
  return std::move(result).value();
}

TEST_CASE("the rankings file lists wards by rank with quoted names", "[analysis]") {
  const AnalysisResult result = analysed(awkwardNames());
  CHECK(vulnerabilityRankingsCsv(result) ==
        "WardName,WardCode,median_score,overall_rank,vulnerability_category\r\n"
        "Plain,K3,0.75,1,High Risk\r\n"
        "\"Kano, \"\"Old\"\" Town\",K1,0.5,2,Medium Risk\r\n"
        "\"Line\nTwo\",K2,0.25,3,Low Risk\r\n");
}

TEST_CASE("composite scores have one column per model, rows in input order", "[analysis]") {
  const AnalysisResult result = analysed(awkwardNames());
  CHECK(compositeScoresCsv(result) ==
        "WardName,WardCode,model_1\r\n"
        "\"Kano, \"\"Old\"\" Town\",K1,0.5\r\n"
        "\"Line\nTwo\",K2,0.25\r\n"
        "Plain,K3,0.75\r\n");
  CHECK(modelFormulasCsv(result) == "model,variables\r\nmodel_1,a + b\r\n");
}

TEST_CASE("model formulas list every model of five variables", "[analysis]") {
  const AnalysisResult result = analysed(testing::syntheticWardTable(6, 5, 11), {});
  const Rows rows = parseCsv(modelFormulasCsv(result));
  REQUIRE(rows.size() == 27);
  CHECK(rows[0] == std::vector<std::string>{"model", "variables"});
  CHECK(rows[1] == std::vector<std::string>{"model_1", "pfpr + u5_tpr_rdt"});
  CHECK(rows[26] == std::vector<std::string>{"model_26",
                                             "pfpr + u5_tpr_rdt + mean_rainfall + "
                                             "distance_to_water + housing_quality"});
}

TEST_CASE("the PCA file lists wards by PCA rank", "[analysis]") {
  const AnalysisResult result = analysed(awkwardNames());
  const Rows rows = parseCsv(pcaResultsCsv(result));
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] ==
        std::vector<std::string>{"WardName", "WardCode", "pca_score", "pca_rank", "pca_category"});
  const std::vector<size_t> by_rank = wardsByRank(result.pca_ranks);
  for (size_t r = 1; r < rows.size(); ++r) {
    const size_t ward = by_rank[r - 1];
    CHECK(rows[r][1] == result.ward_keys[ward]);
    CHECK(std::stod(rows[r][2]) == result.pca.scores[ward]);
    CHECK(rows[r][3] == std::to_string(r));
  }
  CHECK(rows[1][4] == "High Risk");
  CHECK(rows[2][4] == "Medium Risk");
  CHECK(rows[3][4] == "Low Risk");
  CHECK(std::stod(rows[1][2]) >= std::stod(rows[2][2]));
  CHECK(std::stod(rows[2][2]) >= std::stod(rows[3][2]));
}

TEST_CASE("the unified dataset holds imputed, normalised and score columns", "[analysis]") {
  WardTable table = awkwardNames();
  table.columns.push_back({"population", {100.0, std::nullopt, 300.0}});
  table.columns.push_back({"empty", {std::nullopt, std::nullopt, std::nullopt}});
  const AnalysisResult result = analysed(table);
  CHECK(result.skipped_columns == std::vector<std::string>{"empty"});
  const Rows rows = parseCsv(unifiedDatasetCsv(result));
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == std::vector<std::string>{"WardName", "WardCode", "a", "b", "population",
                                            "a_normalized", "b_normalized", "median_score",
                                            "overall_rank", "vulnerability_category",
                                            "pca_score", "pca_rank", "pca_category"});
  CHECK(rows[1][0] == "Kano, \"Old\" Town");
  CHECK(std::vector<std::string>(rows[2].begin(), rows[2].begin() + 10) ==
        std::vector<std::string>{"Line\nTwo", "K2", "2", "0", "200", "0.5", "0", "0.25", "3",
                                 "Low Risk"});
}

TEST_CASE("names with commas, quotes and newlines survive a CSV round trip", "[analysis]") {
  const AnalysisResult result = analysed(awkwardNames());
  for (const AnalysisFile& file : analysisFiles(result)) {
    INFO(file.filename);
    const Rows rows = parseCsv(file.content);
    for (size_t r = 1; r < rows.size(); ++r) CHECK(rows[r].size() == rows[0].size());
  }
  const Rows rankings = parseCsv(vulnerabilityRankingsCsv(result));
  CHECK(rankings[2][0] == "Kano, \"Old\" Town");
  CHECK(rankings[3][0] == "Line\nTwo");
}

TEST_CASE("ward names that look like formulas are defused, scores are not", "[analysis]") {
  WardTable table = awkwardNames();
  table.names = {"=HYPERLINK(\"http://evil.example\",\"x\")", "-5 North", "Plain"};
  table.keys = {"K1", "+K2", "K3"};
  const AnalysisResult result = analysed(table);
  const Rows rankings = parseCsv(vulnerabilityRankingsCsv(result));
  REQUIRE(rankings.size() == 4);
  CHECK(rankings[2] == std::vector<std::string>{"'=HYPERLINK(\"http://evil.example\",\"x\")", "K1", "0.5", "2",
                                                "Medium Risk"});
  CHECK(rankings[3] == std::vector<std::string>{"'-5 North", "'+K2", "0.25", "3", "Low Risk"});
  // PCA scores are centred, so some are negative: numbers keep their sign and no apostrophe.
  bool negative_seen = false;
  for (const std::vector<std::string>& row : parseCsv(pcaResultsCsv(result))) {
    if (row[2].starts_with("-")) negative_seen = true;
  }
  CHECK(negative_seen);
}

TEST_CASE("analysisFiles names the five result files in order", "[analysis]") {
  const auto files = analysisFiles(analysed(awkwardNames()));
  REQUIRE(files.size() == 5);
  CHECK(files[0].filename == "analysis_vulnerability_rankings.csv");
  CHECK(files[1].filename == "composite_scores.csv");
  CHECK(files[2].filename == "model_formulas.csv");
  CHECK(files[3].filename == "analysis_pca_results.csv");
  CHECK(files[4].filename == "unified_dataset.csv");
}

TEST_CASE("the same input gives byte-identical files", "[analysis]") {
  const WardTable table = testing::syntheticWardTable(25, 20, 2024);
  const auto first = analysisFiles(analysed(table, {}));
  const auto second = analysisFiles(analysed(table, {}));
  REQUIRE(first.size() == second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    INFO(first[i].filename);
    CHECK(first[i].content == second[i].content);
    CHECK(first[i].content.size() > 100);
  }
}

}  // namespace
}  // namespace stickyproxy::backend
