#include "backend/viz/map_page.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "backend/viz/html_text.h"
#include "backend/viz/page_shell.h"
#include "backend/viz/palette.h"

namespace stickyproxy::backend {
namespace {

// Room around the drawing so the outermost strokes are not clipped, in viewBox units.
constexpr int64_t kMarginTenths = 40;

constexpr std::string_view kMapCss =
    ".geo{position:absolute;width:0;height:0;overflow:hidden}"
    ".geo path{vector-effect:non-scaling-stroke}"
    ".grid{display:grid;gap:20px 28px;grid-template-columns:repeat(var(--cols),minmax(0,1fr));"
    "max-width:calc(var(--cols)*760px)}"
    "@media(max-width:760px){.grid{grid-template-columns:minmax(0,1fr)}}"
    ".panel{margin:0;min-width:0}"
    ".panel figcaption{font-weight:600;margin:0 0 4px}"
    "svg.map{display:block;width:100%;height:auto;max-height:85vh;fill-rule:evenodd;stroke:#fff;"
    "stroke-width:.6px;stroke-linejoin:round}"
    "svg.map .hl{fill:none;stroke:#000;stroke-width:2px;pointer-events:none}"
    ".ramp{display:inline-block;width:160px;height:12px;border:1px solid #999}";

// Hovering a ward shows its tooltip and outlines it in every panel.
constexpr std::string_view kMapScript =
    "var d=JSON.parse(document.getElementById('viz-data').textContent),hls=[];"
    "function hide(){tipHide();hls.forEach(function(h){h.removeAttribute('href');});}"
    "document.querySelectorAll('svg.map').forEach(function(svg,p){"
    "var hl=document.createElementNS('http://www.w3.org/2000/svg','use');"
    "hl.setAttribute('class','hl');svg.appendChild(hl);hls.push(hl);"
    "svg.addEventListener('pointermove',function(e){var u=e.target.closest('use');"
    "if(!u||u===hl){hide();return;}"
    "var w=+u.getAttribute('href').slice(2),P=d.panels[p],k=p+':'+w;"
    "if(k!==tipKey)hls.forEach(function(h){h.setAttribute('href','#w'+w);});"
    "tipShow(e,[d.names[w],P.t[w],P.n[w]],k);});"
    "svg.addEventListener('pointerleave',hide);});";

// What one panel shows for one shape.
struct Cell {
  std::string color;
  std::string text;  // the value or category, or "No data"
  bool has_data = false;
};

struct PanelCells {
  std::vector<Cell> cells;
  double min = 0;
  double max = 0;
  size_t no_data = 0;
  size_t category_counts[3] = {0, 0, 0};
};

PanelCells panelCells(const MapPanel& panel, size_t shapes) {
  PanelCells result;
  result.cells.resize(shapes);
  if (panel.scale == MapScale::kSequential) {
    bool have_range = false;
    for (size_t i = 0; i < shapes && i < panel.values.size(); ++i) {
      const std::optional<double>& value = panel.values[i];
      if (!value || !std::isfinite(*value)) continue;
      result.min = have_range ? std::min(result.min, *value) : *value;
      result.max = have_range ? std::max(result.max, *value) : *value;
      have_range = true;
    }
    for (size_t i = 0; i < shapes; ++i) {
      Cell& cell = result.cells[i];
      const std::optional<double> value = i < panel.values.size() ? panel.values[i] : std::nullopt;
      if (!value || !std::isfinite(*value)) continue;
      // One value everywhere has no low or high end: it takes the middle of the ramp.
      const double t = result.max > result.min ? (*value - result.min) / (result.max - result.min) : 0.5;
      cell = {sequentialColor(t), formatDisplayNumber(*value), true};
    }
  } else {
    for (size_t i = 0; i < shapes; ++i) {
      const std::optional<RiskCategory> category =
          i < panel.categories.size() ? panel.categories[i] : std::nullopt;
      if (!category) continue;
      result.cells[i] = {std::string(riskCategoryColor(category)), std::string(riskCategoryLabel(*category)),
                         true};
      ++result.category_counts[static_cast<size_t>(*category)];
    }
  }
  for (Cell& cell : result.cells) {
    if (cell.has_data) continue;
    cell = {std::string(kNoDataColor), "No data", false};
    ++result.no_data;
  }
  return result;
}

std::string wardName(const MapPage& page, size_t shape) {
  if (shape < page.ward_names.size() && !page.ward_names[shape].empty()) return page.ward_names[shape];
  return "Ward " + std::to_string(shape + 1);
}

// "Median score: 0.53", or just the value when the panel has no label.
std::string valueLine(const MapPanel& panel, const Cell& cell) {
  return panel.value_label.empty() ? cell.text : panel.value_label + ": " + cell.text;
}

void appendSwatch(std::string* out, std::string_view color, std::string_view label) {
  *out += "<span class=\"sw\"><i style=\"background:";
  *out += color;
  *out += "\"></i>";
  appendHtmlEscaped(out, label);
  *out += "</span>";
}

void appendLegend(std::string* out, const MapPanel& panel, const PanelCells& cells) {
  *out += "<div class=\"legend\">";
  if (!panel.value_label.empty()) {
    *out += "<span>";
    appendHtmlEscaped(out, panel.value_label);
    *out += "</span>";
  }
  if (panel.scale == MapScale::kSequential) {
    if (cells.no_data < cells.cells.size()) {
      *out += "<span>" + formatDisplayNumber(cells.min) +
              "</span><span class=\"ramp\" style=\"background:" + sequentialGradientCss() +
              "\"></span><span>" + formatDisplayNumber(cells.max) + "</span>";
    }
  } else {
    for (RiskCategory category : {RiskCategory::kHigh, RiskCategory::kMedium, RiskCategory::kLow}) {
      appendSwatch(out, riskCategoryColor(category),
                   std::string(riskCategoryLabel(category)) + " (" +
                       std::to_string(cells.category_counts[static_cast<size_t>(category)]) + ")");
    }
  }
  if (cells.no_data > 0) appendSwatch(out, kNoDataColor, "No data (" + std::to_string(cells.no_data) + ")");
  *out += "</div>\n";
}

void appendPanel(std::string* out, const WardOutlines& outlines, const MapPanel& panel, const PanelCells& cells) {
  const int64_t width = std::llround(outlines.width() * 10);
  const int64_t height = std::llround(outlines.height() * 10);
  *out += "<figure class=\"panel\"><figcaption>";
  appendHtmlEscaped(out, panel.title);
  *out += "</figcaption>\n<svg class=\"map\" viewBox=\"";
  appendTenths(out, -kMarginTenths);
  *out += ' ';
  appendTenths(out, -kMarginTenths);
  *out += ' ';
  appendTenths(out, width + 2 * kMarginTenths);
  *out += ' ';
  appendTenths(out, height + 2 * kMarginTenths);
  *out += "\" role=\"img\" aria-label=\"";
  appendHtmlEscaped(out, panel.title);
  *out += "\">\n";
  for (size_t i = 0; i < cells.cells.size(); ++i) {
    const Cell& cell = cells.cells[i];
    *out += "<use href=\"#w";
    *out += std::to_string(i);
    *out += "\" fill=\"";
    *out += cell.color;
    *out += "\"/>\n";
  }
  *out += "</svg>\n";
  appendLegend(out, panel, cells);
  *out += "</figure>\n";
}

}  // namespace

std::string renderMapPage(const WardOutlines& outlines, const MapPage& page) {
  const size_t shapes = outlines.size();
  std::vector<PanelCells> panels;
  panels.reserve(page.panels.size());
  for (const MapPanel& panel : page.panels) panels.push_back(panelCells(panel, shapes));

  std::string out;
  out.reserve(outlines.pathBytes() + shapes * (40 + 80 * page.panels.size()) + 8192);
  appendPageStart(&out, page.title, page.subtitle, kMapCss);

  out += "<svg class=\"geo\" aria-hidden=\"true\" focusable=\"false\"><defs>\n";
  for (size_t i = 0; i < shapes; ++i) {
    // A null shape gets no d at all: browsers complain about d="" but not about a missing one.
    out += "<path id=\"w" + std::to_string(i) + "\"";
    if (!outlines.path(i).empty()) out += " d=\"" + outlines.path(i) + "\"";
    out += "/>\n";
  }
  out += "</defs></svg>\n";

  const size_t columns = page.panels.size() <= 1 ? 1 : page.panels.size() <= 4 ? 2 : 3;
  out += "<main class=\"grid\" style=\"--cols:" + std::to_string(columns) + "\">\n";
  for (size_t p = 0; p < page.panels.size(); ++p)
    appendPanel(&out, outlines, page.panels[p], panels[p]);
  out += "</main>\n";

  // {"names":[...],"panels":[{"t":[value line per shape],"n":[note per shape]}]}
  std::string json = "{\"names\":[";
  for (size_t i = 0; i < shapes; ++i) {
    if (i > 0) json += ',';
    appendScriptJsonString(&json, wardName(page, i));
  }
  json += "],\"panels\":[";
  for (size_t p = 0; p < page.panels.size(); ++p) {
    const MapPanel& panel = page.panels[p];
    if (p > 0) json += ',';
    json += "{\"t\":[";
    for (size_t i = 0; i < shapes; ++i) {
      if (i > 0) json += ',';
      appendScriptJsonString(&json, valueLine(panel, panels[p].cells[i]));
    }
    json += "],\"n\":[";
    for (size_t i = 0; i < shapes && i < panel.notes.size(); ++i) {
      if (i > 0) json += ',';
      appendScriptJsonString(&json, panel.notes[i]);
    }
    json += "]}";
  }
  json += "]}";
  appendPageEnd(&out, json, kMapScript);
  return out;
}

}  // namespace stickyproxy::backend
