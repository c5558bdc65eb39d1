#include "backend/export/report.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/backend/analysis/synthetic_ward_table.h"

namespace stickyproxy::backend {
namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

size_t occurrences(std::string_view text, std::string_view part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string_view::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// Six wards in a row whose names and codes try to break out of HTML and terminals. pfpr rises
// along the row and distance_to_water falls, so the last ward is the riskiest.
WardTable hostileWards() {
  WardTable table;
  table.keys = {"K1", "K2<b>", "K3", "K4", "K5", "K6"};
  table.names = {"<script>alert(1)</script>",
                 "\"><img src=x onerror=alert(1)>",
                 "Tudun & Wada",
                 "O'Brien \x1b[31mRED\x1b[0m",
                 "Latin-1 caf\xE9",
                 "Plain Ward"};
  table.columns = {{"pfpr", {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}},
                   {"distance_to_water", {60.0, 50.0, 40.0, 30.0, 20.0, 10.0}},
                   {"mean_rainfall", {5.0, 1.0, 4.0, 2.0, 3.0, 6.0}},
                   {"empty_column", {std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                                     std::nullopt}}};
  table.columns[2].values[1] = std::nullopt;  // one value to impute from neighbours
  table.adjacency = {{1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4}};
  return table;
}

AnalysisResult analysed(const WardTable& table) {
  auto result = runAnalysis(table, AnalysisOptions{{"pfpr", "distance_to_water", "mean_rainfall"}});
  INFO(result.error());
  REQUIRE(result.ok());
  return std::move(result).value();
}

ReportInput inputFor(const AnalysisResult& result) {
  ReportInput input;
  input.session_id = "s3ss10n<&>";
  input.generated_at = "2024-05-01T12:00:00Z";
  input.result = &result;
  input.csv_filename = "wards <final>.csv";
  input.shapefile_filename = "shapes&bounds.zip";
  input.unmatched_wards = 3;
  return input;
}

TEST_CASE("text from the upload is HTML-escaped wherever the report shows it", "[export]") {
  const AnalysisResult result = analysed(hostileWards());
  const std::string html = renderReportHtml(inputFor(result));

  CHECK_FALSE(contains(html, "<script"));
  CHECK_FALSE(contains(html, "<img"));
  CHECK_FALSE(contains(html, "<b>"));
  CHECK_FALSE(contains(html, "<final>"));
  CHECK_FALSE(contains(html, "\x1b"));
  CHECK(contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  CHECK(contains(html, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
  CHECK(contains(html, "Tudun &amp; Wada"));
  CHECK(contains(html, "O&#39;Brien \xEF\xBF\xBD[31mRED\xEF\xBF\xBD[0m"));
  CHECK(contains(html, "Latin-1 caf\xEF\xBF\xBD"));  // a stray byte becomes U+FFFD
  CHECK(contains(html, "K2&lt;b&gt;"));
  CHECK(contains(html, "s3ss10n&lt;&amp;&gt;"));
  CHECK(contains(html, "wards &lt;final&gt;.csv"));
  CHECK(contains(html, "shapes&amp;bounds.zip"));
}

TEST_CASE("the HTML report is self-contained and holds every fact", "[export]") {
  const AnalysisResult result = analysed(hostileWards());
  const std::string html = renderReportHtml(inputFor(result));

  CHECK(html.starts_with("<!DOCTYPE html>\n"));
  CHECK(html.ends_with("</html>\n"));
  CHECK(contains(html, "<meta charset=\"utf-8\">"));
  CHECK(contains(html, "<link rel=\"icon\" href=\"data:,\">"));
  CHECK(occurrences(html, "<link") == 1);
  CHECK_FALSE(contains(html, "http://"));
  CHECK_FALSE(contains(html, "https://"));
  CHECK_FALSE(contains(html, "url("));
  CHECK_FALSE(contains(html, "<script"));
  CHECK(contains(html, "default-src 'none'"));

  CHECK(contains(html, "2024-05-01T12:00:00Z"));
  CHECK(contains(html, "<th scope=\"row\">Wards analysed</th><td>6</td>"));
  CHECK(contains(html, "<th scope=\"row\">Wards not matched between CSV and shapefile</th><td>3</td>"));
  CHECK(contains(html, "1 from neighbouring wards"));
  CHECK(contains(html, "Columns left out (no values)</th><td>empty_column</td>"));

  CHECK(contains(html, "Variables used (3)"));
  CHECK(contains(html, "<tr><td>pfpr</td><td>direct</td>"));
  CHECK(contains(html, "<tr><td>distance_to_water</td><td>inverse</td>"));
  CHECK(contains(html, "Composite models (4)"));
  for (const CompositeModel& model : result.models) {
    CHECK(contains(html, "<tr><td>" + model.name + "</td><td>" + model.formula + "</td></tr>"));
  }
  CHECK(contains(html, "pfpr + distance_to_water + mean_rainfall"));
  CHECK(contains(html, "Principal component analysis"));

  for (std::string_view label : {"High Risk", "Medium Risk", "Low Risk"}) CHECK(contains(html, label));
  CHECK(contains(html, "<h3>High Risk</h3><p>2 ward(s)</p>\n<ol>\n<li>Plain Ward</li>"));

  // The ranking: one row per ward, by rank, with its code, score and PCA rank.
  CHECK(occurrences(html, "<tr class=\"") == 6);
  CHECK(contains(html, "<tr class=\"high-risk\"><td class=\"num\">1</td><td>Plain Ward</td><td>K6</td>"));
  CHECK(html.find("<td>Plain Ward</td><td>K6</td>") < html.find("<td>K1</td>"));
  const size_t ward6 = 5;
  char score[32];
  std::snprintf(score, sizeof score, "%.4f", result.median_scores[ward6]);
  CHECK(contains(html, "<td>K6</td><td class=\"num\">" + std::string(score) + "</td>"));
  CHECK(contains(html, "<td class=\"num\">" + std::to_string(result.pca_ranks[ward6]) + "</td></tr>"));
}

TEST_CASE("the same input renders the same bytes", "[export]") {
  const AnalysisResult first = analysed(hostileWards());
  const AnalysisResult second = analysed(hostileWards());
  CHECK(renderReportHtml(inputFor(first)) == renderReportHtml(inputFor(second)));
  CHECK(renderSummaryText(inputFor(first)) == renderSummaryText(inputFor(second)));

  const AnalysisResult big = analysed(testing::syntheticWardTable(20, 15, 11));
  ReportInput input = inputFor(big);
  CHECK(renderReportHtml(input) == renderReportHtml(input));
  CHECK(occurrences(renderReportHtml(input), "<tr class=\"") == 300);
  input.generated_at = "2024-05-02T00:00:00Z";
  CHECK(renderReportHtml(input) != renderReportHtml(inputFor(big)));
}

TEST_CASE("the summary holds the facts as terminal-safe plain text", "[export]") {
  const AnalysisResult result = analysed(hostileWards());
  const std::string text = renderSummaryText(inputFor(result));

  CHECK_FALSE(contains(text, "\x1b"));
  CHECK_FALSE(contains(text, "\xE9"));
  CHECK(contains(text, "O'Brien ?[31mRED?[0m"));
  CHECK(contains(text, "Latin-1 caf?"));
  CHECK(contains(text, "<script>alert(1)</script>"));  // plain text: shown as it is

  CHECK(contains(text, "Session:"));
  CHECK(contains(text, "s3ss10n<&>"));
  CHECK(contains(text, "2024-05-01T12:00:00Z"));
  CHECK(contains(text, "wards <final>.csv"));
  CHECK(contains(text, "Wards analysed:"));
  CHECK(contains(text, "Variables used (3)"));
  CHECK(contains(text, "distance_to_water  inverse  (higher value, lower risk)"));
  CHECK(contains(text, "Composite models (4)"));
  for (const CompositeModel& model : result.models) CHECK(contains(text, model.formula));
  CHECK(contains(text, "High Risk (2 ward(s)):\n   1. Plain Ward\n"));
  CHECK(contains(text, "Rank  Ward"));
  CHECK(contains(text, "   1  Plain Ward"));
  // Each line ends without trailing spaces and the table has one line per ward after its header.
  CHECK_FALSE(contains(text, " \n"));
  const size_t table = text.find("Rank  Ward");
  CHECK(occurrences(std::string_view(text).substr(table), "\n") == 7);
}

TEST_CASE("without an analysis both renderings say so instead of failing", "[export]") {
  ReportInput input;
  input.session_id = "abc";
  input.generated_at = "2024-05-01T12:00:00Z";
  const std::string html = renderReportHtml(input);
  CHECK(contains(html, "No analysis has been run"));
  CHECK(html.ends_with("</html>\n"));
  CHECK(contains(renderSummaryText(input), "No analysis has been run"));
}

}  // namespace
}  // namespace stickyproxy::backend
