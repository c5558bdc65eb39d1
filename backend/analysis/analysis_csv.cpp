#include "backend/analysis/analysis_csv.h"

#include "backend/data/csv_writer.h"

namespace stickyproxy::backend {
namespace {

void wardFields(CsvWriter& csv, const AnalysisResult& result, size_t ward) {
  csv.field(result.ward_names[ward]);
  csv.field(result.ward_keys[ward]);
}

void wardHeader(CsvWriter& csv) {
  csv.field("WardName");
  csv.field("WardCode");
}

}  // namespace

std::string vulnerabilityRankingsCsv(const AnalysisResult& result) {
  CsvWriter csv;
  wardHeader(csv);
  csv.field("median_score");
  csv.field("overall_rank");
  csv.field("vulnerability_category");
  csv.endRow();
  for (size_t ward : wardsByRank(result.overall_ranks)) {
    wardFields(csv, result, ward);
    csv.number(result.median_scores[ward]);
    csv.number(result.overall_ranks[ward]);
    csv.field(riskCategoryLabel(result.vulnerability_categories[ward]));
    csv.endRow();
  }
  return std::move(csv).take();
}

std::string compositeScoresCsv(const AnalysisResult& result) {
  CsvWriter csv;
  wardHeader(csv);
  for (const CompositeModel& model : result.models) csv.field(model.name);
  csv.endRow();
  for (size_t ward = 0; ward < result.wardCount(); ++ward) {
    wardFields(csv, result, ward);
    for (size_t m = 0; m < result.models.size(); ++m) csv.number(result.model_scores.at(ward, m));
    csv.endRow();
  }
  return std::move(csv).take();
}

std::string modelFormulasCsv(const AnalysisResult& result) {
  CsvWriter csv;
  csv.field("model");
  csv.field("variables");
  csv.endRow();
  for (const CompositeModel& model : result.models) {
    csv.field(model.name);
    csv.field(model.formula);
    csv.endRow();
  }
  return std::move(csv).take();
}

std::string pcaResultsCsv(const AnalysisResult& result) {
  CsvWriter csv;
  wardHeader(csv);
  csv.field("pca_score");
  csv.field("pca_rank");
  csv.field("pca_category");
  csv.endRow();
  for (size_t ward : wardsByRank(result.pca_ranks)) {
    wardFields(csv, result, ward);
    csv.number(result.pca.scores[ward]);
    csv.number(result.pca_ranks[ward]);
    csv.field(riskCategoryLabel(result.pca_categories[ward]));
    csv.endRow();
  }
  return std::move(csv).take();
}

std::string unifiedDatasetCsv(const AnalysisResult& result) {
  CsvWriter csv;
  wardHeader(csv);
  for (const ImputedColumn& column : result.imputed_columns) csv.field(column.name);
  for (const std::string& variable : result.variables_used) csv.field(variable + "_normalized");
  for (const char* name : {"median_score", "overall_rank", "vulnerability_category", "pca_score",
                           "pca_rank", "pca_category"}) {
    csv.field(name);
  }
  csv.endRow();
  for (size_t ward = 0; ward < result.wardCount(); ++ward) {
    wardFields(csv, result, ward);
    for (const ImputedColumn& column : result.imputed_columns) csv.number(column.values[ward]);
    for (const std::vector<double>& normalized : result.normalized) csv.number(normalized[ward]);
    csv.number(result.median_scores[ward]);
    csv.number(result.overall_ranks[ward]);
    csv.field(riskCategoryLabel(result.vulnerability_categories[ward]));
    csv.number(result.pca.scores[ward]);
    csv.number(result.pca_ranks[ward]);
    csv.field(riskCategoryLabel(result.pca_categories[ward]));
    csv.endRow();
  }
  return std::move(csv).take();
}

std::vector<AnalysisFile> analysisFiles(const AnalysisResult& result) {
  std::vector<AnalysisFile> files;
  files.reserve(5);
  files.push_back({kVulnerabilityRankingsFile, vulnerabilityRankingsCsv(result)});
  files.push_back({kCompositeScoresFile, compositeScoresCsv(result)});
  files.push_back({kModelFormulasFile, modelFormulasCsv(result)});
  files.push_back({kPcaResultsFile, pcaResultsCsv(result)});
  files.push_back({kUnifiedDatasetFile, unifiedDatasetCsv(result)});
  return files;
}

}  // namespace stickyproxy::backend
