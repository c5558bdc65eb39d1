#include "backend/export/report.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

#include "backend/data/text_util.h"

namespace stickyproxy::backend {
namespace {

constexpr std::string_view kTitle = "Malaria risk analysis report";
constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Scripts are not used at all; the policy makes sure nothing in the page (even text that slipped
// through escaping) could load or run anything.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

constexpr std::string_view kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;"
    "max-width:60rem;padding:0 1rem;color:#1f2933;line-height:1.45}"
    "h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;"
    "border-bottom:1px solid #d5dbe1;padding-bottom:.2rem}"
    ".meta{color:#52606d;margin-top:0}"
    "table{border-collapse:collapse;margin:.5rem 0}"
    "th,td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}"
    "th{background:#f5f7fa}th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".categories{display:flex;flex-wrap:wrap;gap:1rem}"
    ".category{flex:1 1 15rem;border:1px solid #d5dbe1;border-radius:.4rem;padding:.5rem 1rem}"
    ".category h3{margin:.2rem 0;font-size:1.05rem}"
    ".high{border-top:.3rem solid #c0392b}.medium{border-top:.3rem solid #e67e22}"
    ".low{border-top:.3rem solid #27ae60}"
    "tr.high-risk td.category-cell{color:#a93226}tr.medium-risk td.category-cell{color:#b9770e}"
    "tr.low-risk td.category-cell{color:#1e8449}";

// Calls `valid(run)` for each maximal run of well-formed UTF-8 in `text` and `invalid()` once for
// each byte between runs, so the sanitisers below never cut a character in half.
template <typename Valid, typename Invalid>
void splitUtf8(std::string_view text, Valid valid, Invalid invalid) {
  while (!text.empty()) {
    const std::optional<size_t> bad = firstInvalidUtf8(text);
    const size_t good = bad.value_or(text.size());
    if (good > 0) valid(text.substr(0, good));
    if (!bad) return;
    invalid();
    text.remove_prefix(good + 1);
  }
}

bool isC0OrDel(unsigned char byte) { return byte < 0x20 || byte == 0x7F; }

void appendEscaped(std::string& out, std::string_view text) {
  splitUtf8(
      text,
      [&out](std::string_view run) {
        for (char c : run) {
          switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default:
              if (isC0OrDel(static_cast<unsigned char>(c))) {
                out += kReplacementCharacter;
              } else {
                out += c;
              }
          }
        }
      },
      [&out] { out += kReplacementCharacter; });
}

std::string escaped(std::string_view text) {
  std::string out;
  appendEscaped(out, text);
  return out;
}

// One line of terminal text: C0 controls, DEL and C1 controls (U+0080..U+009F, which some
// terminals obey like ESC sequences) and stray bytes become '?'.
std::string terminalSafe(std::string_view text) {
  std::string out;
  splitUtf8(
      text,
      [&out](std::string_view run) {
        for (size_t i = 0; i < run.size(); ++i) {
          const auto byte = static_cast<unsigned char>(run[i]);
          if (isC0OrDel(byte)) {
            out += '?';
          } else if (byte == 0xC2 && i + 1 < run.size() && static_cast<unsigned char>(run[i + 1]) < 0xA0) {
            out += '?';  // a C1 control: C2 80..C2 9F
            ++i;
          } else {
            out += run[i];
          }
        }
      },
      [&out] { out += '?'; });
  return out;
}

// Characters (code points) in UTF-8 `text`, for padding columns; wide characters count as one.
size_t displayWidth(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string padRight(std::string text, size_t width) {
  const size_t shown = displayWidth(text);
  if (shown < width) text.append(width - shown, ' ');
  return text;
}

std::string padLeft(const std::string& text, size_t width) {
  const size_t shown = displayWidth(text);
  return shown < width ? std::string(width - shown, ' ') + text : text;
}

// `value` with exactly `decimals` decimals, locale-independent; "n/a" when not finite.
std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "n/a";
  std::array<char, 64> buffer{};
  auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "n/a";
  std::string text(buffer.data(), end);
  // -0.0001 rounds to "-0.0000"; show it as the zero it is.
  if (text.front() == '-' && text.find_first_not_of("-0.") == std::string::npos) text.erase(0, 1);
  return text;
}

std::string percent(double ratio) { return fixed(100.0 * ratio, 1) + "%"; }

std::string_view directionMeaning(Direction direction) {
  return direction == Direction::kInverse ? "higher value, lower risk" : "higher value, higher risk";
}

std::string_view categoryCssClass(RiskCategory category) {
  switch (category) {
    case RiskCategory::kHigh:
      return "high";
    case RiskCategory::kMedium:
      return "medium";
    case RiskCategory::kLow:
      return "low";
  }
  return "low";
}

// The facts both renderings show, worked out once so the two cannot disagree.
struct Facts {
  size_t imputed_from_neighbours = 0;
  size_t imputed_from_mean = 0;
  std::array<size_t, 3> category_sizes{};  // by RiskCategory
  std::vector<size_t> ranking;             // ward indexes by overall rank
};

Facts factsOf(const AnalysisResult& result) {
  Facts facts;
  for (const ImputedColumn& column : result.imputed_columns) {
    facts.imputed_from_neighbours += column.from_neighbours;
    facts.imputed_from_mean += column.from_column_mean;
  }
  for (RiskCategory category : result.vulnerability_categories) {
    ++facts.category_sizes[static_cast<size_t>(category)];
  }
  facts.ranking = wardsByRank(result.overall_ranks);
  return facts;
}

struct CategoryList {
  RiskCategory category;
  const std::vector<std::string>* top_wards;
};

std::array<CategoryList, 3> categoryLists(const AnalysisResult& result) {
  return {{{RiskCategory::kHigh, &result.high_risk_wards},
           {RiskCategory::kMedium, &result.medium_risk_wards},
           {RiskCategory::kLow, &result.low_risk_wards}}};
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// ---- HTML ----

void factRow(std::string& out, std::string_view label, std::string_view escaped_value) {
  out += "<tr><th scope=\"row\">";
  out += label;
  out += "</th><td>";
  out += escaped_value;
  out += "</td></tr>\n";
}

void htmlData(std::string& out, const ReportInput& input, const AnalysisResult& result, const Facts& facts) {
  out += "<h2>Data</h2>\n<table class=\"facts\">\n";
  factRow(out, "CSV file", escaped(input.csv_filename));
  factRow(out, "Shapefile", input.shapefile_filename.empty() ? "none" : escaped(input.shapefile_filename));
  factRow(out, "Wards analysed", std::to_string(result.wardCount()));
  factRow(out, "Wards not matched between CSV and shapefile", std::to_string(input.unmatched_wards));
  factRow(out, "Numeric columns", std::to_string(result.imputed_columns.size()));
  factRow(out, "Missing values filled",
          std::to_string(facts.imputed_from_neighbours + facts.imputed_from_mean) + " (" +
              std::to_string(facts.imputed_from_neighbours) + " from neighbouring wards, " +
              std::to_string(facts.imputed_from_mean) + " from the column mean)");
  if (!result.skipped_columns.empty()) {
    std::vector<std::string> names;
    for (const std::string& name : result.skipped_columns) names.push_back(escaped(name));
    factRow(out, "Columns left out (no values)", joined(names));
  }
  out += "</table>\n";
}

void htmlVariables(std::string& out, const AnalysisResult& result) {
  out += "<h2>Variables used (" + std::to_string(result.variables_used.size()) + ")</h2>\n";
  out += "<table>\n<thead><tr><th>Variable</th><th>Direction</th><th>Meaning</th></tr></thead>\n<tbody>\n";
  for (size_t v = 0; v < result.variables_used.size(); ++v) {
    const Direction direction = v < result.directions.size() ? result.directions[v] : Direction::kDirect;
    out += "<tr><td>" + escaped(result.variables_used[v]) + "</td><td>";
    out += directionLabel(direction);
    out += "</td><td>";
    out += directionMeaning(direction);
    out += "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n";
}

void htmlModels(std::string& out, const AnalysisResult& result) {
  out += "<h2>Composite models (" + std::to_string(result.models.size()) + ")</h2>\n";
  out += "<p>Every combination of two or more variables is a model scoring each ward by the mean of its "
         "normalised values; a ward's overall score is its median over all models.</p>\n";
  out += "<table>\n<thead><tr><th>Model</th><th>Variables</th></tr></thead>\n<tbody>\n";
  for (const CompositeModel& model : result.models) {
    out += "<tr><td>" + escaped(model.name) + "</td><td>" + escaped(model.formula) + "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n";
}

void htmlPca(std::string& out, const AnalysisResult& result) {
  out += "<h2>Principal component analysis</h2>\n<p>A second opinion on the ranking: ";
  if (result.pca.explained_variance_ratio.empty()) {
    out += "no component could be computed.</p>\n";
    return;
  }
  out += "the PCA score weights the first " + std::to_string(result.pca.explained_variance_ratio.size()) +
         " component(s), which explain ";
  std::vector<std::string> shares;
  for (double ratio : result.pca.explained_variance_ratio) shares.push_back(percent(ratio));
  out += joined(shares) + " of the variance.</p>\n";
}

void htmlTopWards(std::string& out, const AnalysisResult& result, const Facts& facts) {
  out += "<h2>Top wards by risk category</h2>\n<div class=\"categories\">\n";
  for (const CategoryList& list : categoryLists(result)) {
    const size_t size = facts.category_sizes[static_cast<size_t>(list.category)];
    out += "<section class=\"category ";
    out += categoryCssClass(list.category);
    out += "\"><h3>";
    out += riskCategoryLabel(list.category);
    out += "</h3><p>" + std::to_string(size) + " ward(s)";
    if (size > list.top_wards->size()) out += "; the first " + std::to_string(list.top_wards->size()) + ":";
    out += "</p>\n<ol>\n";
    for (const std::string& name : *list.top_wards) out += "<li>" + escaped(name) + "</li>\n";
    out += "</ol></section>\n";
  }
  out += "</div>\n";
}

void htmlRanking(std::string& out, const AnalysisResult& result, const Facts& facts) {
  out += "<h2>Full ranking</h2>\n<table class=\"ranking\">\n<thead><tr><th class=\"num\">Rank</th><th>Ward</th>"
         "<th>Code</th><th class=\"num\">Median score</th><th>Category</th><th class=\"num\">PCA rank</th></tr>"
         "</thead>\n<tbody>\n";
  for (size_t ward : facts.ranking) {
    const RiskCategory category = result.vulnerability_categories[ward];
    out += "<tr class=\"";
    out += categoryCssClass(category);
    out += "-risk\"><td class=\"num\">" + std::to_string(result.overall_ranks[ward]) + "</td><td>" +
           escaped(result.ward_names[ward]) + "</td><td>" + escaped(result.ward_keys[ward]) +
           "</td><td class=\"num\">" + fixed(result.median_scores[ward], 4) + "</td><td class=\"category-cell\">";
    out += riskCategoryLabel(category);
    out += "</td><td class=\"num\">" + std::to_string(result.pca_ranks[ward]) + "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n";
}

// ---- text ----

void textHeading(std::string& out, std::string_view heading) {
  out += '\n';
  out += heading;
  out += '\n';
  out.append(displayWidth(heading), '-');
  out += '\n';
}

void textFact(std::string& out, std::string_view label, const std::string& value) {
  out += padRight(std::string(label) + ":", 38) + value + "\n";
}

}  // namespace

std::string renderReportHtml(const ReportInput& input) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta http-equiv=\"Content-Security-Policy\" content=\"";
  out += kContentSecurityPolicy;
  out += "\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>";
  out += kTitle;
  out += "</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>";
  out += kTitle;
  out += "</h1>\n<p class=\"meta\">Generated <time datetime=\"" + escaped(input.generated_at) + "\">" +
         escaped(input.generated_at) + "</time> &middot; session <code>" + escaped(input.session_id) +
         "</code></p>\n";
  if (input.result == nullptr) {
    out += "<p>No analysis has been run in this session yet.</p>\n</body>\n</html>\n";
    return out;
  }
  const AnalysisResult& result = *input.result;
  const Facts facts = factsOf(result);
  htmlData(out, input, result, facts);
  htmlVariables(out, result);
  htmlModels(out, result);
  htmlPca(out, result);
  htmlTopWards(out, result, facts);
  htmlRanking(out, result, facts);
  out += "</body>\n</html>\n";
  return out;
}

std::string renderSummaryText(const ReportInput& input) {
  std::string out;
  out += kTitle;
  out += '\n';
  out.append(kTitle.size(), '=');
  out += "\n\n";
  textFact(out, "Generated", terminalSafe(input.generated_at));
  textFact(out, "Session", terminalSafe(input.session_id));
  if (input.result == nullptr) {
    out += "\nNo analysis has been run in this session yet.\n";
    return out;
  }
  const AnalysisResult& result = *input.result;
  const Facts facts = factsOf(result);

  textHeading(out, "Data");
  textFact(out, "CSV file", terminalSafe(input.csv_filename));
  textFact(out, "Shapefile", input.shapefile_filename.empty() ? "none" : terminalSafe(input.shapefile_filename));
  textFact(out, "Wards analysed", std::to_string(result.wardCount()));
  textFact(out, "Wards not matched (CSV vs shapefile)", std::to_string(input.unmatched_wards));
  textFact(out, "Numeric columns", std::to_string(result.imputed_columns.size()));
  textFact(out, "Missing values filled",
           std::to_string(facts.imputed_from_neighbours + facts.imputed_from_mean) + " (" +
               std::to_string(facts.imputed_from_neighbours) + " from neighbours, " +
               std::to_string(facts.imputed_from_mean) + " from the column mean)");
  if (!result.skipped_columns.empty()) {
    std::vector<std::string> names;
    for (const std::string& name : result.skipped_columns) names.push_back(terminalSafe(name));
    textFact(out, "Columns left out (no values)", joined(names));
  }

  textHeading(out, "Variables used (" + std::to_string(result.variables_used.size()) + ")");
  std::vector<std::string> variables;
  size_t variable_width = 0;
  for (const std::string& name : result.variables_used) {
    variables.push_back(terminalSafe(name));
    variable_width = std::max(variable_width, displayWidth(variables.back()));
  }
  for (size_t v = 0; v < variables.size(); ++v) {
    const Direction direction = v < result.directions.size() ? result.directions[v] : Direction::kDirect;
    out += "  " + padRight(variables[v], variable_width) + "  " + padRight(std::string(directionLabel(direction)), 7) +
           "  (" + std::string(directionMeaning(direction)) + ")\n";
  }

  textHeading(out, "Composite models (" + std::to_string(result.models.size()) + ")");
  out += "Each model scores a ward by the mean of its normalised values over the model's\n"
         "variables; a ward's overall score is its median over all models.\n";
  size_t model_width = 0;
  for (const CompositeModel& model : result.models) model_width = std::max(model_width, displayWidth(model.name));
  for (const CompositeModel& model : result.models) {
    out += "  " + padRight(terminalSafe(model.name), model_width) + "  " + terminalSafe(model.formula) + "\n";
  }

  textHeading(out, "Principal component analysis");
  if (result.pca.explained_variance_ratio.empty()) {
    out += "No component could be computed.\n";
  } else {
    std::vector<std::string> shares;
    for (double ratio : result.pca.explained_variance_ratio) shares.push_back(percent(ratio));
    out += "The PCA score weights the first " + std::to_string(shares.size()) + " component(s), which\n" +
           "explain " + joined(shares) + " of the variance.\n";
  }

  textHeading(out, "Top wards by risk category");
  for (const CategoryList& list : categoryLists(result)) {
    const size_t size = facts.category_sizes[static_cast<size_t>(list.category)];
    out += std::string(riskCategoryLabel(list.category)) + " (" + std::to_string(size) + " ward(s)";
    if (size > list.top_wards->size()) out += ", the first " + std::to_string(list.top_wards->size());
    out += "):\n";
    for (size_t i = 0; i < list.top_wards->size(); ++i) {
      out += "  " + padLeft(std::to_string(i + 1), 2) + ". " + terminalSafe((*list.top_wards)[i]) + "\n";
    }
  }

  textHeading(out, "Full ranking");
  struct Row {
    std::string rank, name, code, score, category, pca_rank;
  };
  std::vector<Row> rows;
  rows.push_back({"Rank", "Ward", "Code", "Median score", "Category", "PCA rank"});
  for (size_t ward : facts.ranking) {
    rows.push_back({std::to_string(result.overall_ranks[ward]), terminalSafe(result.ward_names[ward]),
                    terminalSafe(result.ward_keys[ward]), fixed(result.median_scores[ward], 4),
                    std::string(riskCategoryLabel(result.vulnerability_categories[ward])),
                    std::to_string(result.pca_ranks[ward])});
  }
  std::array<size_t, 6> widths{};
  for (const Row& row : rows) {
    const std::array<const std::string*, 6> cells = {&row.rank,  &row.name,     &row.code,
                                                     &row.score, &row.category, &row.pca_rank};
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], displayWidth(*cells[i]));
  }
  for (const Row& row : rows) {
    std::string line = padLeft(row.rank, widths[0]) + "  " + padRight(row.name, widths[1]) + "  " +
                       padRight(row.code, widths[2]) + "  " + padLeft(row.score, widths[3]) + "  " +
                       padRight(row.category, widths[4]) + "  " + padLeft(row.pca_rank, widths[5]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace stickyproxy::backend
