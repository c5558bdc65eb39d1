// POST /get_visualization, POST /navigate_composite_map and GET /serve_viz_file/<sid>/<file>:
// map pages drawn from the session's ward polygons and its last analysis.
#pragma once

#include <string>
#include <string_view>

#include "backend/data/data_status.h"
#include "backend/analysis/vulnerability_analysis.h"
#include "backend/app/app_context.h"
#include "backend/app/session_operations.h"
#include "backend/app/uploaded_data.h"

namespace stickyproxy::backend {

// One page to draw. `type` is vulnerability_map, composite_map, box_plot, pca_map or
// variable_map; `variable` names the column of a variable_map; `page` (1-based) picks the
// composite models shown, clamped to the pages there are.
struct ViewRequest {
  std::string type;
  std::string variable;
  size_t page = 1;
};

struct RenderedView {
  std::string filename;  // e.g. composite_map_page_2.html: a safe file name
  std::string title;
  std::string html;
  size_t page = 0;       // composite maps: the page drawn, and how many there are
  size_t total_pages = 0;
};

// What renderView() would give, without drawing: file name, title and pages, `html` empty.
// Cheap enough for the loop thread; fails as renderView() does.
Expected<RenderedView> planView(const UploadedData& data, const AnalysisResult& analysis, const ViewRequest& request,
                                size_t composite_maps_per_page);

// Draws `request` from the session's data and analysis (its outlines, projected once per
// upload). Pure: safe on any thread. Fails with a user-facing message for an unknown type or
// variable.
Expected<RenderedView> renderView(const UploadedData& data, const AnalysisResult& analysis, const ViewRequest& request,
                                  size_t composite_maps_per_page);

class VisualizationRoutes {
 public:
  using AnswerCallback = SessionOperations::AnswerCallback;

  VisualizationRoutes(AppContext& app, SessionOperations& operations) : app_(app), operations_(operations) {}

  void getVisualization(const ServerExchangePtr& exchange);
  void navigateCompositeMap(const ServerExchangePtr& exchange);
  // Serves results/<file> of session `session_id`, which must be the requester's own session.
  void serveFile(const ServerExchangePtr& exchange, std::string_view session_id, std::string_view file);

  // Renders `request` for the session into its results/ and answers {web_path, title} (plus
  // current_page and total_pages for composite maps); 400 before an analysis. A page this
  // session already drew from its current analysis, still on disk, is answered at once,
  // without drawing or writing it again.
  void render(const std::string& session_id, ViewRequest request, AnswerCallback done);

 private:
  // The answer for `view`, drawn for `session`; a composite page also becomes its current page.
  Answer drawn(SessionState& session, const RenderedView& view);

  AppContext& app_;
  SessionOperations& operations_;
};

}  // namespace stickyproxy::backend
