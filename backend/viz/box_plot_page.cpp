#include "backend/viz/box_plot_page.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/viz/html_text.h"
#include "backend/viz/page_shell.h"
#include "backend/viz/palette.h"

namespace stickyproxy::backend {
namespace {

// Boxes are drawn in a viewBox this wide, stretched to the row's width.
constexpr double kTrackUnits = 1000;

constexpr std::string_view kBoxCss =
    ".plot{max-width:1100px}"
    // Every row is its own grid, so the columns must depend neither on content nor on font size
    // (the axis row's is smaller) to line up.
    ".row,.axis{display:grid;grid-template-columns:48px 220px minmax(0,1fr);align-items:center;"
    "column-gap:8px;padding-right:24px}"
    "@media(max-width:640px){.row,.axis{grid-template-columns:36px 120px minmax(0,1fr)}}"
    ".row{height:22px;border-top:1px solid #f2f2f2}"
    ".row:hover{background:#eef3fa}"
    ".axis{position:sticky;top:0;z-index:1;height:28px;background:#fff;border-bottom:1px solid #999;"
    "font-size:12px;color:#444}"
    ".rk{text-align:right;color:#666;font-variant-numeric:tabular-nums}"
    ".nm{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
    ".ticks{position:relative;height:100%}"
    ".ticks span{position:absolute;bottom:4px;transform:translateX(-50%);font-variant-numeric:tabular-nums}"
    ".row svg{display:block;width:100%;height:20px;"
    "background:linear-gradient(to right,#e4e4e4 1px,transparent 1px) 0 0/calc(100% / var(--k)) 100%;"
    "box-shadow:inset -1px 0 #e4e4e4}"
    ".row svg *{vector-effect:non-scaling-stroke}"
    ".wh{stroke:#444;fill:none}"
    ".row rect{stroke:#333;stroke-width:1px}"
    ".md{stroke:#000;stroke-width:2px}"
    ".none{color:#888;font-style:italic;font-size:12px}"
    ".note{color:#555;font-size:12px;margin:10px 0 0}";

constexpr std::string_view kBoxScript =
    "var d=JSON.parse(document.getElementById('viz-data').textContent),"
    "plot=document.querySelector('.plot');"
    "plot.querySelectorAll('.row[title]').forEach(function(r){r.removeAttribute('title');});"
    "plot.addEventListener('pointermove',function(e){var r=e.target.closest('.row');"
    "if(!r){tipHide();return;}var i=+r.dataset.i;tipShow(e,d.rows[i],i);});"
    "plot.addEventListener('pointerleave',tipHide);";

// The CSS class of a row's category: c0..c2 in RiskCategory order, cn for none.
std::string categoryClass(const std::optional<RiskCategory>& category) {
  return category ? "c" + std::to_string(static_cast<int>(*category)) : "cn";
}

std::string categoryCss() {
  std::string css;
  for (std::optional<RiskCategory> category :
       {std::optional(RiskCategory::kHigh), std::optional(RiskCategory::kMedium),
        std::optional(RiskCategory::kLow), std::optional<RiskCategory>()}) {
    css += "." + categoryClass(category) + " rect{fill:" + std::string(riskCategoryColor(category)) + "}";
  }
  return css;
}

// The axis: a round step of 1, 2 or 5 times a power of ten giving about five intervals, and
// bounds on multiples of it that cover [0, 1] and every score.
struct Axis {
  double low = 0;
  double high = 1;
  double step = 0.2;
  int intervals = 5;

  double position(double value) const {
    const double units = (value - low) / (high - low) * kTrackUnits;
    return std::clamp(std::isfinite(units) ? units : 0.0, 0.0, kTrackUnits);
  }
};

Axis axisFor(const std::vector<std::optional<BoxStats>>& stats) {
  double low = 0;
  double high = 1;
  for (const auto& box : stats) {
    if (!box) continue;
    low = std::min(low, box->min);
    high = std::max(high, box->max);
  }
  Axis axis;
  const double raw = (high - low) / 5;
  if (!std::isfinite(raw) || raw <= 0) return axis;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  const double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  // The slack keeps 1 / 0.2 = 5.000...1 from adding an empty interval.
  const double first = std::floor(low / step + 1e-9);
  const double last = std::ceil(high / step - 1e-9);
  if (!std::isfinite(first) || !std::isfinite(last) || last - first > 100 || last <= first) return axis;
  axis.step = step;
  axis.low = first * step;
  axis.high = last * step;
  axis.intervals = static_cast<int>(last - first);
  return axis;
}

void appendUnits(std::string* out, double units) { appendTenths(out, std::llround(units * 10)); }

// The tooltip lines of a ward: name, rank and category, median and quartiles, range and count.
std::vector<std::string> wardLines(const BoxPlotWard& ward, size_t index,
                                   const std::optional<BoxStats>& box) {
  std::vector<std::string> lines;
  lines.push_back(ward.name.empty() ? "Ward " + std::to_string(index + 1) : ward.name);
  std::string standing;
  if (ward.rank > 0) standing = "Rank " + std::to_string(ward.rank);
  if (ward.category)
    standing += (standing.empty() ? "" : " · ") + std::string(riskCategoryLabel(*ward.category));
  lines.push_back(standing);
  if (!box) {
    lines.push_back("No scores");
    return lines;
  }
  lines.push_back("Median " + formatDisplayNumber(box->median) + " · quartiles " +
                  formatDisplayNumber(box->lower_quartile) + " – " +
                  formatDisplayNumber(box->upper_quartile));
  lines.push_back("Range " + formatDisplayNumber(box->min) + " – " + formatDisplayNumber(box->max) + " · " +
                  std::to_string(box->count) + (box->count == 1 ? " score" : " scores"));
  return lines;
}

void appendRow(std::string* out, size_t index, const BoxPlotWard& ward, const std::optional<BoxStats>& box,
               const std::vector<std::string>& lines, const Axis& axis) {
  *out += "<div class=\"row " + categoryClass(ward.category) + "\" data-i=\"" + std::to_string(index) +
          "\" title=\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    if (i > 0) *out += '\n';
    appendHtmlEscaped(out, lines[i]);
  }
  *out += "\"><span class=\"rk\">";
  if (ward.rank > 0) *out += std::to_string(ward.rank);
  *out += "</span><span class=\"nm\">";
  appendHtmlEscaped(out, lines[0]);
  *out += "</span>";
  if (!box) {
    *out += "<span class=\"none\">no scores</span></div>\n";
    return;
  }
  const double min = axis.position(box->min);
  const double max = axis.position(box->max);
  const double q1 = axis.position(box->lower_quartile);
  const double q3 = axis.position(box->upper_quartile);
  *out += "<svg viewBox=\"0 0 1000 20\" preserveAspectRatio=\"none\"><path class=\"wh\" d=\"M";
  appendUnits(out, min);
  *out += " 10H";
  appendUnits(out, max);
  *out += "M";
  appendUnits(out, min);
  *out += " 5v10M";
  appendUnits(out, max);
  *out += " 5v10\"/><rect x=\"";
  appendUnits(out, q1);
  *out += "\" y=\"4\" width=\"";
  appendTenths(out, std::llround(q3 * 10) - std::llround(q1 * 10));
  *out += "\" height=\"12\"/><path class=\"md\" d=\"M";
  appendUnits(out, axis.position(box->median));
  // The median bar reaches past the box, so it shows on the darkest fill and when the box
  // has no width at all.
  *out += " 1v18\"/></svg></div>\n";
}

}  // namespace

double interpolatedQuantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::nan("");
  const double h = static_cast<double>(sorted.size() - 1) * std::clamp(p, 0.0, 1.0);
  const auto lower = static_cast<size_t>(std::floor(h));
  if (lower + 1 >= sorted.size()) return sorted.back();
  return sorted[lower] + (h - static_cast<double>(lower)) * (sorted[lower + 1] - sorted[lower]);
}

std::optional<BoxStats> boxStats(const std::vector<double>& scores) {
  std::vector<double> sorted;
  sorted.reserve(scores.size());
  for (double score : scores) {
    if (std::isfinite(score)) sorted.push_back(score);
  }
  if (sorted.empty()) return std::nullopt;
  std::sort(sorted.begin(), sorted.end());
  BoxStats box;
  box.count = sorted.size();
  box.min = sorted.front();
  box.lower_quartile = interpolatedQuantile(sorted, 0.25);
  box.median = interpolatedQuantile(sorted, 0.5);
  box.upper_quartile = interpolatedQuantile(sorted, 0.75);
  box.max = sorted.back();
  return box;
}

std::string renderBoxPlotPage(std::string_view title, std::string_view subtitle,
                              const std::vector<BoxPlotWard>& wards) {
  std::vector<std::optional<BoxStats>> stats;
  stats.reserve(wards.size());
  for (const BoxPlotWard& ward : wards) stats.push_back(boxStats(ward.scores));
  const Axis axis = axisFor(stats);

  std::string out;
  out.reserve(wards.size() * 600 + 8192);
  appendPageStart(&out, title, subtitle, std::string(kBoxCss) + categoryCss());

  out += "<div class=\"legend\">";
  bool any_without_category = false;
  for (const BoxPlotWard& ward : wards) any_without_category |= !ward.category.has_value();
  for (RiskCategory category : {RiskCategory::kHigh, RiskCategory::kMedium, RiskCategory::kLow}) {
    out += "<span class=\"sw\"><i style=\"background:" + std::string(riskCategoryColor(category)) +
           "\"></i>" + std::string(riskCategoryLabel(category)) + "</span>";
  }
  if (any_without_category) {
    out +=
        "<span class=\"sw\"><i style=\"background:" + std::string(kNoDataColor) + "\"></i>No category</span>";
  }
  out +=
      "<span>Box: lower to upper quartile · bar: median · whiskers: lowest to highest score</span></div>\n";

  out += "<div class=\"plot\" style=\"--k:" + std::to_string(axis.intervals) +
         "\">\n<div class=\"axis\"><span class=\"rk\">Rank</span><span>Ward</span><div class=\"ticks\">";
  for (int i = 0; i <= axis.intervals; ++i) {
    out += "<span style=\"left:";
    appendTenths(&out, std::llround(1000.0 * i / axis.intervals));
    out += "%\">" + formatDisplayNumber(axis.low + axis.step * i) + "</span>";
  }
  out += "</div></div>\n";

  std::string json = "{\"rows\":[";
  for (size_t i = 0; i < wards.size(); ++i) {
    const std::vector<std::string> lines = wardLines(wards[i], i, stats[i]);
    appendRow(&out, i, wards[i], stats[i], lines, axis);
    if (i > 0) json += ',';
    json += '[';
    for (size_t l = 0; l < lines.size(); ++l) {
      if (l > 0) json += ',';
      appendScriptJsonString(&json, lines[l]);
    }
    json += ']';
  }
  json += "]}";
  out += "</div>\n<p class=\"note\">";
  out += wards.empty() ? "No wards to show. " : "";
  out += "Quartiles by linear interpolation between the sorted scores (as numpy and R do by default).</p>\n";
  appendPageEnd(&out, json, kBoxScript);
  return out;
}

}  // namespace stickyproxy::backend
