#include "backend/app/visualization_routes.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "proxy/net/background_job.h"
#include "backend/session/derived_file.h"
#include "backend/app/exchange_io.h"
#include "backend/app/session_layout.h"
#include "backend/viz/box_plot_page.h"
#include "backend/viz/map_page.h"
#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

namespace {

constexpr std::string_view kVizNotFound = "Visualization file not found";

std::string formatScore(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

// Per-shape values from per-row values, through the join.
template <typename T>
std::vector<std::optional<T>> perShape(const UploadedData& data, const std::function<std::optional<T>(size_t row)>& of_row) {
  std::vector<std::optional<T>> values(data.layer.size());
  for (size_t shape = 0; shape < values.size(); ++shape) {
    if (auto row = data.join.row_of_shape[shape]) values[shape] = of_row(*row);
  }
  return values;
}

std::vector<std::string> rankNotes(const UploadedData& data, const AnalysisResult& analysis,
                                   const std::vector<size_t>& ranks, std::string_view what) {
  std::vector<std::string> notes(data.layer.size());
  for (size_t shape = 0; shape < notes.size(); ++shape) {
    if (auto row = data.join.row_of_shape[shape]) {
      notes[shape] = std::string(what) + " rank " + std::to_string(ranks[*row]) + " of " +
                     std::to_string(analysis.wardCount());
    }
  }
  return notes;
}

// A column name as part of a file name: letters, digits, '-' and '_' kept, others as '_'.
std::string fileNamePart(std::string_view name) {
  std::string part;
  for (char c : name.substr(0, 64)) {
    bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
    part.push_back(keep ? c : '_');
  }
  return part;
}

}  // namespace

namespace {

// planView() and renderView() in one: the page's name, title and position always, its HTML only
// when `draw`.
Expected<RenderedView> buildView(const UploadedData& data, const AnalysisResult& analysis, const ViewRequest& request,
                                 size_t composite_maps_per_page, bool draw) {
  if (!data.has_shapes || !data.outlines) return AnalysisError{"Maps need the ward shapefile: upload it with the CSV"};
  RenderedView view;
  const std::string subtitle = std::to_string(analysis.wardCount()) + " wards, " +
                               std::to_string(analysis.variables_used.size()) + " variables";
  if (request.type == "box_plot") {
    view.filename = "box_plot.html";
    view.title = "Composite score spread per ward";
    if (!draw) return view;
    std::vector<BoxPlotWard> wards;
    for (size_t ward : wardsByRank(analysis.overall_ranks)) {
      const double* row = analysis.model_scores.row(ward);
      wards.push_back(BoxPlotWard{analysis.ward_names[ward],
                                  std::vector<double>(row, row + analysis.model_scores.modelCount()),
                                  analysis.overall_ranks[ward], analysis.vulnerability_categories[ward]});
    }
    view.html = renderBoxPlotPage(view.title, subtitle + ", " + std::to_string(analysis.models.size()) + " models", wards);
    return view;
  }

  MapPage page;
  page.subtitle = subtitle;
  page.ward_names = data.join.shape_keys;
  if (request.type == "vulnerability_map") {
    MapPanel panel;
    panel.title = "Vulnerability (median composite score)";
    panel.value_label = "Risk category";
    panel.scale = MapScale::kRiskCategory;
    panel.categories = perShape<RiskCategory>(data, [&](size_t row) { return analysis.vulnerability_categories[row]; });
    panel.notes = rankNotes(data, analysis, analysis.overall_ranks, "Overall");
    for (size_t shape = 0; shape < panel.notes.size(); ++shape) {
      if (auto row = data.join.row_of_shape[shape]) panel.notes[shape] += ", median score " + formatScore(analysis.median_scores[*row]);
    }
    page.title = view.title = "Malaria vulnerability map";
    page.panels.push_back(std::move(panel));
    view.filename = "vulnerability_map.html";
  } else if (request.type == "pca_map") {
    MapPanel panel;
    panel.title = "PCA vulnerability score";
    panel.value_label = "PCA score";
    panel.values = perShape<double>(data, [&](size_t row) { return analysis.pca.scores[row]; });
    panel.notes = rankNotes(data, analysis, analysis.pca_ranks, "PCA");
    page.title = view.title = "PCA vulnerability map";
    page.panels.push_back(std::move(panel));
    view.filename = "pca_map.html";
  } else if (request.type == "composite_map") {
    const size_t per_page = std::max<size_t>(1, composite_maps_per_page);
    const size_t models = analysis.models.size();
    view.total_pages = std::max<size_t>(1, (models + per_page - 1) / per_page);
    view.page = std::clamp<size_t>(request.page, 1, view.total_pages);
    for (size_t model = (view.page - 1) * per_page; model < std::min(models, view.page * per_page); ++model) {
      MapPanel panel;
      panel.title = "Model " + std::to_string(model + 1) + ": " + analysis.models[model].formula;
      panel.value_label = "Composite score";
      panel.values = perShape<double>(data, [&](size_t row) { return analysis.model_scores.at(row, model); });
      page.panels.push_back(std::move(panel));
    }
    page.title = view.title = "Composite risk models";
    page.subtitle = "Page " + std::to_string(view.page) + " of " + std::to_string(view.total_pages) + " (" +
                    std::to_string(models) + " models)";
    view.filename = "composite_map_page_" + std::to_string(view.page) + ".html";
  } else if (request.type == "variable_map") {
    auto column = std::find_if(analysis.imputed_columns.begin(), analysis.imputed_columns.end(),
                               [&](const ImputedColumn& candidate) { return candidate.name == request.variable; });
    if (request.variable.empty()) return AnalysisError{"variable_map needs a variable"};
    if (column == analysis.imputed_columns.end()) {
      return AnalysisError{"Unknown variable '" + request.variable + "': pick a numeric column of the upload"};
    }
    MapPanel panel;
    panel.title = request.variable;
    panel.value_label = request.variable;
    panel.values = perShape<double>(data, [&](size_t row) { return column->values[row]; });
    page.title = view.title = "Variable map: " + request.variable;
    page.panels.push_back(std::move(panel));
    view.filename = "variable_map_" + fileNamePart(request.variable) + "_" +
                    std::to_string(column - analysis.imputed_columns.begin()) + ".html";
  } else {
    return AnalysisError{"Unknown visualization type '" + request.type +
                         "' (vulnerability_map, composite_map, box_plot, pca_map, variable_map)"};
  }
  if (draw) view.html = renderMapPage(*data.outlines, page);
  return view;
}

}  // namespace

Expected<RenderedView> planView(const UploadedData& data, const AnalysisResult& analysis, const ViewRequest& request,
                                size_t composite_maps_per_page) {
  return buildView(data, analysis, request, composite_maps_per_page, false);
}

Expected<RenderedView> renderView(const UploadedData& data, const AnalysisResult& analysis, const ViewRequest& request,
                                  size_t composite_maps_per_page) {
  return buildView(data, analysis, request, composite_maps_per_page, true);
}

Answer VisualizationRoutes::drawn(SessionState& session, const RenderedView& view) {
  picojson::object fields;
  fields["web_path"] = picojson::value("/serve_viz_file/" + session.id + "/" + view.filename);
  fields["title"] = picojson::value(view.title);
  if (view.total_pages > 0) {
    fields["current_page"] = picojson::value(static_cast<double>(view.page));
    fields["total_pages"] = picojson::value(static_cast<double>(view.total_pages));
    if (session.current_map_page != static_cast<int>(view.page)) {
      session.current_map_page = static_cast<int>(view.page);
      // Where the user is in the composite pages is worth no fsync per step: a crash at worst
      // shows page 1 again (SessionStore::saveLazily).
      std::string error;
      if (!app_.sessions().saveLazily(session, &error)) app_.log("cannot save session state: " + error);
    }
  }
  return Answer::success(std::move(fields));
}

void VisualizationRoutes::render(const std::string& session_id, ViewRequest request, AnswerCallback done) {
  operations_.withAnalysedSession(session_id, done, [this, session_id, request = std::move(request), done](
                                                       std::shared_ptr<const UploadedData> data,
                                                       std::shared_ptr<const AnalysisResult> analysis) {
    const size_t per_page = app_.options().composite_maps_per_page;
    Expected<RenderedView> plan = planView(*data, *analysis, request, per_page);
    if (!plan.ok()) return done(app_.dataFailure(plan.status(), "bad_visualization", "Could not draw the map"));
    const std::string results = operations_.resultsDir(session_id);
    SessionState* session = app_.sessions().find(session_id, app_.now());
    if (session != nullptr && session->rendered_for == analysis &&
        session->rendered_pages.count(plan.value().filename) != 0 &&
        ::access(joinPath(results, plan.value().filename).c_str(), F_OK) == 0) {
      return done(drawn(*session, plan.value()));
    }
    auto view = std::make_shared<std::optional<Expected<RenderedView>>>();
    auto write_error = std::make_shared<std::string>();
    runInBackground(
        app_.loop(),
        [data, analysis, request, per_page, results, view, write_error] {
          view->emplace(renderView(*data, *analysis, request, per_page));
          const RenderedView* rendered = (*view)->valueIfOk();
          if (rendered == nullptr) return;
          // results/ can be missing (a worker killed between an upload's swap and its save leaves
          // flags that promise an analysis): made here, never above it, so a session adopted away
          // meanwhile does not get its directory back.
          std::error_code ignored;
          std::filesystem::create_directory(results, ignored);
          writeDerivedFile(joinPath(results, rendered->filename), rendered->html, write_error.get());
        },
        [this, session_id, analysis, view, write_error, done] {
          const RenderedView* rendered = (*view)->valueIfOk();
          if (rendered == nullptr) {
            return done(app_.dataFailure((*view)->status(), "bad_visualization", "Could not draw the map"));
          }
          SessionState* found = app_.sessions().find(session_id, app_.now());
          if (found == nullptr || !found->holdsAnalysis(analysis)) {
            return done(Answer::error(ErrorKind::kConflict,
                                      "This session changed while the map was drawn; ask for it again"));
          }
          if (!write_error->empty()) return done(app_.serverFailure("Could not store the map", *write_error));
          if (found->rendered_for != analysis) {
            found->rendered_for = analysis;
            found->rendered_pages.clear();
          }
          found->rendered_pages.insert(rendered->filename);
          done(drawn(*found, *rendered));
        });
  });
}

void VisualizationRoutes::getVisualization(const ServerExchangePtr& exchange) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    ViewRequest request{stringMember(body, "type"), stringMember(body, "variable"), 1};
    if (request.type.empty()) return app_.respondError(live, ErrorKind::kBadInput, "Missing visualization type");
    SessionState* session = app_.sessionOf(live->request());
    if (session == nullptr) return app_.respondError(live, ErrorKind::kBadInput, std::string(kAnalysisFirstMessage));
    render(session->id, std::move(request), [this, weak](Answer answer) {
      app_.respond(weak, answer);
    });
  });
}

void VisualizationRoutes::navigateCompositeMap(const ServerExchangePtr& exchange) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    std::string direction = stringMember(body, "direction");
    if (direction != "next" && direction != "prev") {
      return app_.respondError(live, ErrorKind::kBadInput, "direction must be next or prev");
    }
    SessionState* session = app_.sessionOf(live->request());
    if (session == nullptr) return app_.respondError(live, ErrorKind::kBadInput, std::string(kAnalysisFirstMessage));
    double current = std::max(1, session->current_map_page);
    auto page = body.find("current_page");
    if (page != body.end() && page->second.is<double>() && std::isfinite(page->second.get<double>())) {
      current = std::clamp(page->second.get<double>(), 1.0, 1e6);
    }
    size_t next = static_cast<size_t>(current);
    next = direction == "next" ? next + 1 : std::max<size_t>(1, next - 1);
    render(session->id, ViewRequest{"composite_map", "", next}, [this, weak](Answer answer) {
      app_.respond(weak, answer);
    });
  });
}

void VisualizationRoutes::serveFile(const ServerExchangePtr& exchange, std::string_view session_id,
                                    std::string_view file) {
  if (!SessionStore::isValidId(session_id) || !isSafeFileName(file) || !file.ends_with(".html")) {
    app_.noteRejected("bad_path", "serve_viz_file");
    return app_.respondError(exchange, ErrorKind::kBadInput, "Invalid session id or file name");
  }
  SessionState* session = app_.sessionOf(exchange->request());
  if (session == nullptr || session->id != session_id) {
    return app_.respondError(exchange, ErrorKind::kNotFound, std::string(kVizNotFound));
  }
  sendFile(app_, exchange, joinPath(operations_.resultsDir(session->id), file), "text/html; charset=utf-8", "",
           std::string(kVizNotFound));
}

}  // namespace stickyproxy::backend
