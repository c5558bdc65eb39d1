#include "backend/app/export_routes.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <memory>

#include "backend/analysis/analysis_csv.h"
#include "proxy/net/background_job.h"
#include "backend/app/exchange_io.h"
#include "backend/app/session_layout.h"
#include "backend/export/report.h"
#include "backend/export/zip_archive.h"
#include "backend/session/derived_file.h"
#include "backend/session/directory_listing.h"
#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

namespace fs = std::filesystem;

namespace {

struct FileDescription {
  std::string_view filename;
  std::string_view name;
  std::string_view description;
};

constexpr FileDescription kKnownFiles[] = {
    {kVulnerabilityRankingsFile, "Vulnerability rankings", "Each ward's median composite score, rank and risk category"},
    {kCompositeScoresFile, "Composite scores", "Each ward's score under every composite model"},
    {kModelFormulasFile, "Model formulas", "The variables combined in each composite model"},
    {kPcaResultsFile, "PCA results", "Each ward's PCA score, rank and category"},
    {kUnifiedDatasetFile, "Unified dataset", "The uploaded data with imputed values, normalised variables and all scores"},
    {kReportHtmlFile, "Analysis report", "A printable report of the analysis"},
    {kExportZipFile, "Results archive", "Every result CSV and map, with a summary"},
    {"vulnerability_map.html", "Vulnerability map", "Wards coloured by risk category"},
    {"pca_map.html", "PCA map", "Wards coloured by PCA score"},
    {"box_plot.html", "Box plot", "The spread of each ward's composite model scores"},
};

std::string_view extensionOf(std::string_view filename) {
  size_t dot = filename.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : filename.substr(dot + 1);
}

std::string_view contentTypeOf(std::string_view extension) {
  if (extension == "csv") return "text/csv; charset=utf-8";
  if (extension == "html") return "text/html; charset=utf-8";
  if (extension == "zip") return "application/zip";
  return {};
}

picojson::object describe(const std::string& session_id, const std::string& filename) {
  const std::string_view extension = extensionOf(filename);
  std::string name = filename;
  std::string description;
  for (const FileDescription& known : kKnownFiles) {
    if (known.filename == filename) {
      name = known.name;
      description = known.description;
    }
  }
  if (description.empty()) {
    if (filename.starts_with("composite_map_page_")) {
      name = "Composite maps, page " + filename.substr(19, filename.size() - 19 - 5);
      description = "Wards coloured by composite model scores";
    } else if (filename.starts_with("variable_map_")) {
      name = "Variable map";
      description = "Wards coloured by one variable";
    }
  }
  picojson::object file;
  file["name"] = picojson::value(name);
  file["filename"] = picojson::value(filename);
  file["type"] = picojson::value(std::string(extension));
  file["description"] = picojson::value(description);
  file["url"] = picojson::value("/export/download/" + session_id + "/" + filename);
  std::string category = extension == "csv" ? "data" : extension == "zip" || filename == kReportHtmlFile ? "report" : "visualization";
  file["category"] = picojson::value(category);
  return file;
}

// The downloadable files of a results directory, sorted by name. A directory that is not there
// (no results yet) lists as empty; one that cannot be read sets `error` and lists what was read.
std::vector<std::string> resultFiles(const std::string& results_dir, std::error_code* error) {
  std::vector<std::string> names;
  for (DirectoryEntry& entry : listDirectory(results_dir, error)) {
    if (entry.type == fs::file_type::regular && isSafeFileName(entry.name) &&
        !contentTypeOf(extensionOf(entry.name)).empty()) {
      names.push_back(std::move(entry.name));
    }
  }
  if (*error == std::errc::no_such_file_or_directory) error->clear();
  std::sort(names.begin(), names.end());
  return names;
}

std::string isoTimeNow() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

SessionState* ExportRoutes::ownSession(const ServerExchangePtr& exchange, std::string_view session_id) {
  if (!SessionStore::isValidId(session_id)) {
    app_.noteRejected("bad_path", "export session id");
    app_.respondError(exchange, ErrorKind::kBadInput, "Invalid session id");
    return nullptr;
  }
  SessionState* session = app_.sessionOf(exchange->request());
  if (session == nullptr || session->id != session_id) {
    Answer answer = Answer::error(ErrorKind::kNotFound, "Session not found: upload your data again");
    answer.body["success"] = picojson::value(false);
    app_.respond(exchange, answer);
    return nullptr;
  }
  return session;
}

void ExportRoutes::list(const ServerExchangePtr& exchange, std::string_view session_id) {
  SessionState* session = ownSession(exchange, session_id);
  if (session == nullptr) return;
  picojson::array files;
  const std::string results = operations_.resultsDir(session->id);
  std::error_code listing;
  for (const std::string& filename : resultFiles(results, &listing)) {
    files.emplace_back(describe(session->id, filename));
  }
  if (listing) {
    return app_.respond(exchange, app_.serverFailure("Could not list the results", results + ": " + listing.message()));
  }
  picojson::object fields;
  fields["success"] = picojson::value(true);
  fields["session_id"] = picojson::value(session->id);
  fields["count"] = picojson::value(static_cast<double>(files.size()));
  fields["files"] = picojson::value(std::move(files));
  app_.respond(exchange, Answer::success(std::move(fields)));
}

void ExportRoutes::download(const ServerExchangePtr& exchange, std::string_view session_id, std::string_view filename) {
  const std::string_view content_type = contentTypeOf(extensionOf(filename));
  if (!isSafeFileName(filename) || content_type.empty()) {
    app_.noteRejected("bad_path", "export file name");
    return app_.respondError(exchange, ErrorKind::kBadInput, "Invalid file name (csv, html or zip files only)");
  }
  SessionState* session = ownSession(exchange, session_id);
  if (session == nullptr) return;
  sendFile(app_, exchange, joinPath(operations_.resultsDir(session->id), filename), content_type, filename,
           "File not found");
}

void ExportRoutes::downloadReport(const ServerExchangePtr& exchange, std::string_view filename) {
  const std::string_view content_type = contentTypeOf(extensionOf(filename));
  if (!isSafeFileName(filename) || content_type.empty()) {
    app_.noteRejected("bad_path", "report file name");
    return app_.respondError(exchange, ErrorKind::kBadInput, "Invalid file name");
  }
  SessionState* session = app_.sessionOf(exchange->request());
  if (session == nullptr) return app_.respondError(exchange, ErrorKind::kNotFound, "Report not found");
  sendFile(app_, exchange, joinPath(operations_.resultsDir(session->id), filename), content_type, filename,
           "Report not found");
}

void ExportRoutes::generateReport(const ServerExchangePtr& exchange) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    SessionState* session = app_.sessionOf(live->request());
    if (session == nullptr) return app_.respondError(live, ErrorKind::kBadInput, std::string(kAnalysisFirstMessage));
    buildReport(session->id, stringMember(body, "format", "html"), [this, weak](Answer answer) {
      app_.respond(weak, answer);
    });
  });
}

void ExportRoutes::buildReport(const std::string& session_id, const std::string& format, AnswerCallback done) {
  if (format != "html" && format != "export") {
    return done(Answer::error(ErrorKind::kBadInput, "format must be html or export"));
  }
  operations_.withAnalysedSession(session_id, done, [this, session_id, format, done](
                                                       std::shared_ptr<const UploadedData> data,
                                                       std::shared_ptr<const AnalysisResult> analysis) {
    const std::string results = operations_.resultsDir(session_id);
    const size_t per_page = app_.options().composite_maps_per_page;
    auto error = std::make_shared<std::string>();
    const std::string filename(format == "html" ? kReportHtmlFile : kExportZipFile);
    ReportInput input{session_id, isoTimeNow(), analysis.get(), data->csv_filename, data->shapefile_filename,
                      data->join.unmatched_rows.size()};
    runInBackground(
        app_.loop(),
        [data, analysis, results, per_page, error, filename, format, input] {
          std::error_code mkdir_failure;  // the writes below report it
          fs::create_directory(results, mkdir_failure);  // as in VisualizationRoutes::render: one level only
          if (format == "html") {
            writeFileAtomically(joinPath(results, filename), renderReportHtml(input), error.get());
            return;
          }
          // The archive holds the main maps even when the user never opened them.
          // Only the maps not drawn yet are drawn: a page in results/ is the one this analysis made.
          for (const char* type : {"vulnerability_map", "pca_map", "box_plot"}) {
            const ViewRequest request{type, "", 1};
            Expected<RenderedView> plan = planView(*data, *analysis, request, per_page);
            if (!plan.ok()) continue;  // a map that cannot be drawn is left out
            const std::string path = joinPath(results, plan.value().filename);
            std::error_code ignored;
            if (fs::exists(path, ignored)) continue;
            Expected<RenderedView> view = renderView(*data, *analysis, request, per_page);
            if (view.ok()) writeDerivedFile(path, view.value().html, error.get());
          }
          std::vector<ZipEntry> entries;
          std::error_code listing;
          for (const std::string& name : resultFiles(results, &listing)) {
            if (name != filename) entries.push_back(ZipEntry{name, joinPath(results, name), {}});
          }
          if (listing) {
            *error = "cannot list " + results + ": " + listing.message();
            return;
          }
          entries.push_back(ZipEntry{"summary.txt", {}, renderSummaryText(input)});
          DataStatus status = writeZipArchive(joinPath(results, filename), entries);
          if (!status.ok()) *error = status.message();
        },
        [this, session_id, analysis, error, filename, done] {
          SessionState* found = app_.sessions().find(session_id, app_.now());
          if (found == nullptr || !found->holdsAnalysis(analysis)) {
            return done(Answer::error(ErrorKind::kConflict,
                                      "This session changed while the report was built; ask for it again"));
          }
          if (!error->empty()) return done(app_.serverFailure("Could not build the report", *error));
          picojson::object fields;
          fields["download_url"] = picojson::value("/download_report/" + filename);
          fields["filename"] = picojson::value(filename);
          done(Answer::success(std::move(fields)));
        });
  });
}

}  // namespace stickyproxy::backend
