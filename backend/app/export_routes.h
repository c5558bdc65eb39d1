// GET /export/list/<sid>, GET /export/download/<sid>/<file>, POST /generate_report and
// GET /download_report/<file>: the session's results as downloads.
#pragma once

#include <string>
#include <string_view>

#include "backend/app/app_context.h"
#include "backend/app/session_operations.h"
#include "backend/app/visualization_routes.h"

namespace stickyproxy::backend {

inline constexpr std::string_view kReportHtmlFile = "analysis_report.html";
inline constexpr std::string_view kExportZipFile = "chatmrpt_results.zip";

class ExportRoutes {
 public:
  using AnswerCallback = SessionOperations::AnswerCallback;

  ExportRoutes(AppContext& app, SessionOperations& operations, VisualizationRoutes& visualizations)
      : app_(app), operations_(operations), visualizations_(visualizations) {}

  // {success, session_id, files: [{name, filename, type, description, url, category}], count}
  void list(const ServerExchangePtr& exchange, std::string_view session_id);
  void download(const ServerExchangePtr& exchange, std::string_view session_id, std::string_view filename);
  void generateReport(const ServerExchangePtr& exchange);
  void downloadReport(const ServerExchangePtr& exchange, std::string_view filename);

  // Builds the report of `format` "html" (analysis_report.html) or "export" (a zip of the result
  // CSVs, the maps and summary.txt; the main maps are drawn first if missing) into results/ and
  // answers {download_url}; 400 before an analysis or for another format.
  void buildReport(const std::string& session_id, const std::string& format, AnswerCallback done);

 private:
  // The requester's own session when it is `session_id`; else answers 404 and returns nullptr.
  SessionState* ownSession(const ServerExchangePtr& exchange, std::string_view session_id);

  AppContext& app_;
  SessionOperations& operations_;
  VisualizationRoutes& visualizations_;
};

}  // namespace stickyproxy::backend
