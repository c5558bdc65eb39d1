#include "backend/viz/box_plot_page.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "tests/backend/viz/viz_test_support.h"

namespace stickyproxy::backend {
namespace {

using viz_test::countOf;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

TEST_CASE("quartiles interpolate linearly between closest ranks, as numpy does", "[viz]") {
  // n = 4: h = 3p, so Q1 sits 3/4 of the way from 1 to 2, Q3 1/4 of the way from 3 to 4.
  std::optional<BoxStats> box = boxStats({4, 1, 3, 2});
  REQUIRE(box);
  CHECK(box->count == 4);
  CHECK(box->min == 1);
  CHECK(box->lower_quartile == 1.75);
  CHECK(box->median == 2.5);
  CHECK(box->upper_quartile == 3.25);
  CHECK(box->max == 4);

  // n = 5: h = 1, 2, 3 land on values.
  box = boxStats({5, 4, 3, 2, 1});
  REQUIRE(box);
  CHECK(box->lower_quartile == 2);
  CHECK(box->median == 3);
  CHECK(box->upper_quartile == 4);

  // n = 2: quarter points of the one interval.
  box = boxStats({0, 10});
  REQUIRE(box);
  CHECK(box->lower_quartile == 2.5);
  CHECK(box->median == 5);
  CHECK(box->upper_quartile == 7.5);

  // Scores 0.1 0.35 0.4 0.8: Q1 = 0.1 + 0.75 * 0.25, median halfway 0.35..0.4, Q3 = 0.4 + 0.25 * 0.4.
  box = boxStats({0.4, 0.1, 0.8, 0.35});
  REQUIRE(box);
  CHECK(box->lower_quartile == Approx(0.2875));
  CHECK(box->median == Approx(0.375));
  CHECK(box->upper_quartile == Approx(0.5));

  // One score is every quartile; non-finite scores are left out; none at all is no box.
  box = boxStats({7});
  REQUIRE(box);
  CHECK(box->min == 7);
  CHECK(box->lower_quartile == 7);
  CHECK(box->upper_quartile == 7);
  CHECK(box->max == 7);
  box = boxStats({5, kNaN, 1, kInfinity, 3, -kInfinity});
  REQUIRE(box);
  CHECK(box->count == 3);
  CHECK(box->min == 1);
  CHECK(box->lower_quartile == 2);
  CHECK(box->median == 3);
  CHECK(box->upper_quartile == 4);
  CHECK(box->max == 5);
  CHECK_FALSE(boxStats({}).has_value());
  CHECK_FALSE(boxStats({kNaN}).has_value());

  CHECK(interpolatedQuantile({1, 2, 3, 4}, 0) == 1);
  CHECK(interpolatedQuantile({1, 2, 3, 4}, 1) == 4);
  CHECK(interpolatedQuantile({1, 2, 3, 4}, 0.9) == Approx(3.7));
}

TEST_CASE("boxes are drawn from the five numbers on a 0..1 axis, coloured by category", "[viz]") {
  const std::string page = renderBoxPlotPage("Composite score spread", "412 wards",
                                             {{"Bosso", {1, 0.5, 0, 0.75, 0.25}, 1, RiskCategory::kHigh},
                                              {"Gurara", {0.2, 0.4}, 2, RiskCategory::kMedium},
                                              {"Lapai", {}, 3, std::nullopt}});
  CHECK(page.starts_with("<!DOCTYPE html>"));
  CHECK(countOf(page, "<link rel=\"icon\" href=\"data:,\">") == 1);
  CHECK(countOf(page, "<h1>Composite score spread</h1><p>412 wards</p>") == 1);
  CHECK(countOf(page, "--k:5") == 1);
  for (const std::string tick : {"0", "0.2", "0.4", "0.6", "0.8", "1"})
    CHECK(countOf(page, "%\">" + tick + "</span>") == 1);
  CHECK(countOf(page, "<span style=\"left:100%\">1</span>") == 1);

  CHECK(countOf(page,
                "<div class=\"row c0\" data-i=\"0\" title=\"Bosso\nRank 1 · High Risk\n"
                "Median 0.5 · quartiles 0.25 – 0.75\nRange 0 – 1 · 5 scores\">"
                "<span class=\"rk\">1</span><span class=\"nm\">Bosso</span>") == 1);
  CHECK(countOf(page,
                "d=\"M0 10H1000M0 5v10M1000 5v10\"/><rect x=\"250\" y=\"4\" width=\"500\" height=\"12\"/>"
                "<path class=\"md\" d=\"M500 1v18\"/>") == 1);
  // 0.2 and 0.4: quartiles 0.25 and 0.35, median 0.3.
  CHECK(countOf(page, "<div class=\"row c1\" data-i=\"1\"") == 1);
  CHECK(countOf(page, "d=\"M200 10H400M200 5v10M400 5v10\"/><rect x=\"250\" y=\"4\" width=\"100\"") == 1);
  CHECK(countOf(page, "<path class=\"md\" d=\"M300 1v18\"/>") == 1);
  CHECK(countOf(page, "<div class=\"row cn\" data-i=\"2\"") == 1);
  CHECK(countOf(page, "<span class=\"none\">no scores</span>") == 1);
  CHECK(countOf(page,
                ".c0 rect{fill:#a50026}.c1 rect{fill:#fd8d3c}.c2 rect{fill:#ffffb2}.cn rect{fill:#d9d9d9}") ==
        1);
  CHECK(countOf(page, "No category") == 1);
  CHECK(countOf(page, "linear interpolation") == 1);
  CHECK(countOf(page, R"(["Lapai","Rank 3","No scores"])") == 1);
  CHECK(countOf(page, "<svg viewBox") == 2);
}

TEST_CASE("scores outside 0..1 widen the axis to round ticks", "[viz]") {
  const std::string page = renderBoxPlotPage("Spread", "", {{"Bosso", {0.2, 1.3}, 1, RiskCategory::kLow}});
  CHECK(countOf(page, "--k:3") == 1);
  CHECK(countOf(page,
                "<span style=\"left:0%\">0</span><span style=\"left:33.3%\">0.5</span>"
                "<span style=\"left:66.7%\">1</span><span style=\"left:100%\">1.5</span>") == 1);
  CHECK(countOf(page, "<header><h1>Spread</h1></header>") == 1);
  CHECK(countOf(page, "No category") == 0);

  const std::string negative =
      renderBoxPlotPage("Spread", "", {{"Bosso", {-2.5, 0.5}, 1, RiskCategory::kLow}});
  CHECK(countOf(negative, "<span style=\"left:0%\">-3</span><span style=\"left:25%\">-2</span>") == 1);
  CHECK(countOf(negative, "<span style=\"left:100%\">1</span>") == 1);
}

TEST_CASE("wards keep the order they are given, whatever their names or ranks", "[viz]") {
  const std::string page = renderBoxPlotPage("Ranked", "",
                                             {{"Zungeru", {0.9}, 1, RiskCategory::kHigh},
                                              {"Agaie", {0.5}, 2, RiskCategory::kMedium},
                                              {"Mokwa", {0.1}, 3, RiskCategory::kLow}});
  const size_t zungeru = page.find("<span class=\"nm\">Zungeru</span>");
  const size_t agaie = page.find("<span class=\"nm\">Agaie</span>");
  const size_t mokwa = page.find("<span class=\"nm\">Mokwa</span>");
  REQUIRE(zungeru != std::string::npos);
  REQUIRE(agaie != std::string::npos);
  REQUIRE(mokwa != std::string::npos);
  CHECK(zungeru < agaie);
  CHECK(agaie < mokwa);
  CHECK(page.find("data-i=\"0\"") < page.find("data-i=\"1\""));
  CHECK(countOf(page, R"({"rows":[["Zungeru","Rank 1 · High Risk")") == 1);
  CHECK(renderBoxPlotPage("Ranked", "", {}) == renderBoxPlotPage("Ranked", "", {}));
  CHECK(countOf(renderBoxPlotPage("Ranked", "", {}), "No wards to show.") == 1);
}

TEST_CASE("hostile ward names and titles cannot leave their text in the box plot", "[viz]") {
  const std::string page =
      renderBoxPlotPage("<script>alert(0)</script>", "\"><svg onload=alert(5)>",
                        {{"<script>alert(1)</script>", {0.5}, 1, RiskCategory::kHigh},
                         {"\"onmouseover=alert(2) x=\"", {0.5}, 2, RiskCategory::kHigh},
                         {"</script><script>alert(3)</script>", {0.5}, 3, RiskCategory::kLow}});
  CHECK(countOf(page, "<script") == 2);
  CHECK(countOf(page, "</script>") == 2);
  CHECK(countOf(page, "<svg onload") == 0);
  CHECK(countOf(page, "title=\"&quot;onmouseover=alert(2) x=&quot;\n") == 1);
  CHECK(countOf(page, "title=\"\"onmouseover") == 0);
  CHECK(countOf(page, "<span class=\"nm\">&lt;script&gt;alert(1)&lt;/script&gt;</span>") == 1);
  CHECK(countOf(page, R"(["\u003c/script\u003e\u003cscript\u003ealert(3)\u003c/script\u003e")") == 1);
  CHECK(
      countOf(page,
              "<h1>&lt;script&gt;alert(0)&lt;/script&gt;</h1><p>&quot;&gt;&lt;svg onload=alert(5)&gt;</p>") ==
      1);
}

}  // namespace
}  // namespace stickyproxy::backend
