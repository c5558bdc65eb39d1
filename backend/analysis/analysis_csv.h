// The result files of an analysis, as CSV text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backend/analysis/vulnerability_analysis.h"

namespace stickyproxy::backend {

inline constexpr std::string_view kVulnerabilityRankingsFile =
    "analysis_vulnerability_rankings.csv";
inline constexpr std::string_view kCompositeScoresFile = "composite_scores.csv";
inline constexpr std::string_view kModelFormulasFile = "model_formulas.csv";
inline constexpr std::string_view kPcaResultsFile = "analysis_pca_results.csv";
inline constexpr std::string_view kUnifiedDatasetFile = "unified_dataset.csv";

// Every writer below returns a whole RFC 4180 document (CsvWriter): a header row, then data
// rows. Columns "WardName" and "WardCode" hold the ward's display name and its unique key
// (WardCode, or "<WardCode>_<WardName>" where the data layer disambiguated). The text depends
// only on the result, so equal results give byte-identical files.

// WardName, WardCode, median_score, overall_rank, vulnerability_category; rows by overall rank.
std::string vulnerabilityRankingsCsv(const AnalysisResult& result);

// WardName, WardCode, then one column per model (model_1, model_2, ...); rows in input order.
std::string compositeScoresCsv(const AnalysisResult& result);

// model, variables ("pfpr + mean_rainfall"); one row per model, in model order.
std::string modelFormulasCsv(const AnalysisResult& result);

// WardName, WardCode, pca_score, pca_rank, pca_category; rows by PCA rank.
std::string pcaResultsCsv(const AnalysisResult& result);

// WardName, WardCode, every imputed numeric column (input order), "<variable>_normalized" for
// each variable used, median_score, overall_rank, vulnerability_category, pca_score, pca_rank,
// pca_category; rows in input order.
std::string unifiedDatasetCsv(const AnalysisResult& result);

struct AnalysisFile {
  std::string_view filename;  // one of the k...File names above
  std::string content;
};

// All five files, in the order listed above, for the caller to write (atomically) to disk.
std::vector<AnalysisFile> analysisFiles(const AnalysisResult& result);

}  // namespace stickyproxy::backend
