// The human-readable side of an export: an HTML report and a plain-text summary of one analysis.
#pragma once

#include <cstddef>
#include <string>

#include "backend/analysis/vulnerability_analysis.h"

namespace stickyproxy::backend {

struct ReportInput {
  std::string session_id;
  std::string generated_at;  // ISO 8601 UTC, e.g. "2024-05-01T12:00:00Z"; shown as given
  // The analysis to describe; must outlive the render call. Null renders a report that says no
  // analysis has been run (a route calling too early gets a page, not a crash).
  const AnalysisResult* result = nullptr;
  std::string csv_filename;        // the uploaded files' names, as the user called them
  std::string shapefile_filename;  // empty when no shapefile was uploaded
  size_t unmatched_wards = 0;      // wards the data layer could not match between CSV and shapes
};

// A self-contained HTML5 page: inline CSS, no script, no external asset (the favicon is
// `<link rel="icon" href="data:,">`, and a Content-Security-Policy meta tag forbids fetching
// anything else). It holds the data summary (files, ward count, unmatched wards, imputed values,
// skipped columns), the variables used with their direction, the model count and every formula,
// the PCA's explained variance, the top wards of each risk category, and the full ranking table
// (rank, ward, code, median score, category, PCA rank) by overall rank.
// Every text that came from an upload (file names, session id, ward names and codes, column
// names) is HTML-escaped; bytes that are not UTF-8 and control characters become U+FFFD.
// Deterministic: the same input gives the same bytes (the time is `generated_at`, never the clock).
std::string renderReportHtml(const ReportInput& input);

// The same facts as renderReportHtml() as plain UTF-8 text for summary.txt in the export zip,
// laid out for an 80-column terminal. Control characters (ESC included, so no terminal escape
// sequence survives) and bytes that are not UTF-8 in uploaded text become '?'. Deterministic.
std::string renderSummaryText(const ReportInput& input);

}  // namespace stickyproxy::backend
