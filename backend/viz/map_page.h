// Choropleth map pages: one or several maps of the same wards in one self-contained HTML file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/analysis/ranking.h"
#include "backend/viz/ward_outlines.h"

namespace stickyproxy::backend {

enum class MapScale { kSequential, kRiskCategory };

// One map of a page. The per-shape vectors run parallel to the WardOutlines' shapes; a shorter
// vector leaves the remaining shapes without data (drawn grey), extra entries are ignored.
struct MapPanel {
  std::string title;        // "Composite model 3: pfpr + mean_rainfall"
  std::string value_label;  // "Median score", shown in legend and hover
  MapScale scale = MapScale::kSequential;
  // Per shape; nullopt, NaN or infinity = no data (drawn grey). kSequential only: colours run
  // from the lowest to the highest finite value of this panel.
  std::vector<std::optional<double>> values;
  std::vector<std::optional<RiskCategory>> categories;  // per shape; kRiskCategory only
  // Per shape, optional (empty vector allowed): extra hover text, e.g. "rank 3 of 412".
  std::vector<std::string> notes;
};

struct MapPage {
  std::string title;
  std::string subtitle;                 // e.g. "Page 2 of 7" or "412 wards"
  std::vector<std::string> ward_names;  // per shape, shown on hover; "Ward <n>" when missing
  // 1 for single maps; several (small multiples, in a grid of up to 3 columns) for composite pages.
  std::vector<MapPanel> panels;
};

// A complete, self-contained HTML5 document (no external assets, no network): an SVG choropleth
// per panel drawn from `outlines`, a legend per panel (colour ramp with min/max for kSequential;
// the three risk categories with their ward counts for kRiskCategory; a "No data" swatch when
// some ward has none), and on hover the ward name and value/category (+note) shown in a tooltip
// element, with the ward outlined in every panel. Each ward's tooltip text is written once, in the
// page's script data (names once, value lines and notes once per panel), not again as SVG
// <title>s. Geometry is emitted once (in <defs>) and reused by every panel with <use>, so a
// 4-panel page is not 4x the size. All user text is escaped; the same input gives the same bytes.
std::string renderMapPage(const WardOutlines& outlines, const MapPage& page);

}  // namespace stickyproxy::backend
