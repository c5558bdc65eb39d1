#include "backend/viz/map_page.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "backend/data/synthetic_data.h"
#include "tests/backend/viz/viz_test_support.h"

namespace stickyproxy::backend {
namespace {

using viz_test::countOf;
using viz_test::rectangle;
using viz_test::shape;

// Four unit squares in a row; the third is a null shape.
WardOutlines fourWards() {
  return WardOutlines::project({shape({rectangle(0, 0, 1, 1)}), shape({rectangle(1, 0, 2, 1)}), shape({}),
                                shape({rectangle(3, 0, 4, 1)})},
                               false, 400);
}

MapPanel scorePanel(std::string title) {
  MapPanel panel;
  panel.title = std::move(title);
  panel.value_label = "Median score";
  panel.values = {0.2, 0.8, std::nullopt, 0.5};
  panel.notes = {"rank 3 of 4", "rank 1 of 4", "", "rank 2 of 4"};
  return panel;
}

MapPanel categoryPanel() {
  MapPanel panel;
  panel.title = "Risk categories";
  panel.value_label = "Category";
  panel.scale = MapScale::kRiskCategory;
  panel.categories = {RiskCategory::kMedium, RiskCategory::kHigh, std::nullopt, RiskCategory::kHigh};
  return panel;
}

MapPage pageWith(std::vector<MapPanel> panels) {
  MapPage page;
  page.title = "Composite scores";
  page.subtitle = "4 wards";
  page.ward_names = {"Bosso", "Chanchaga", "Gurara", "Kontagora"};
  page.panels = std::move(panels);
  return page;
}

TEST_CASE("geometry is written once and every panel draws each ward with one <use>", "[viz]") {
  const WardOutlines outlines = fourWards();
  const std::string one = renderMapPage(outlines, pageWith({scorePanel("Model 1")}));
  const std::string four = renderMapPage(outlines, pageWith({scorePanel("Model 1"), scorePanel("Model 2"),
                                                             scorePanel("Model 3"), categoryPanel()}));
  for (const std::string* page : {&one, &four}) {
    CHECK(page->starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    CHECK(page->ends_with("</html>\n"));
    CHECK(countOf(*page, "<path id=\"w") == 4);
    CHECK(countOf(*page, "<path id=\"w2\"/>") == 1);  // the null shape has no d
    CHECK(countOf(*page, "d=\"M0 100l0-100 100 0 0 100Z\"") == 1);
    CHECK(countOf(*page, "<link rel=\"icon\" href=\"data:,\">") == 1);
    // Nothing is loaded from anywhere: no src, no stylesheet links, no URLs but the SVG namespace.
    CHECK(countOf(*page, "src=") == 0);
    CHECK(countOf(*page, "<link") == 1);
    CHECK(countOf(*page, "://") == countOf(*page, "http://www.w3.org/2000/svg"));
  }
  CHECK(countOf(one, "<use ") == 4);
  CHECK(countOf(four, "<use ") == 16);
  CHECK(countOf(four, "<use href=\"#w2\"") == 4);
  CHECK(countOf(one, "<svg class=\"map\" viewBox=\"-4 -4 408 108\"") == 1);
  CHECK(countOf(four, "<svg class=\"map\"") == 4);
  CHECK(countOf(one, "--cols:1") == 1);
  CHECK(countOf(four, "--cols:2") == 1);
  // Small multiples cost their <use> lines, not another copy of the geometry.
  CHECK(four.size() - one.size() < 3 * (one.size() - outlines.pathBytes()));
}

TEST_CASE("sequential panels colour from the panel's lowest to highest value with a legend", "[viz]") {
  const std::string page = renderMapPage(fourWards(), pageWith({scorePanel("Model 1")}));
  CHECK(countOf(page, "<use href=\"#w0\" fill=\"#ffffb2\"/>") == 1);
  CHECK(countOf(page, "<use href=\"#w1\" fill=\"#bd0026\"/>") == 1);
  CHECK(countOf(page, "<use href=\"#w2\" fill=\"#d9d9d9\"/>") == 1);
  CHECK(countOf(page, "<use href=\"#w3\" fill=\"#fd8d3c\"/>") == 1);
  // Each ward's tooltip is written once: in the script data, not again as an SVG <title>.
  CHECK(countOf(page, "<title>") == 1);
  CHECK(countOf(page, "Chanchaga") == 1);
  CHECK(countOf(page, "rank 1 of 4") == 1);
  CHECK(countOf(page, "<figcaption>Model 1</figcaption>") == 1);
  CHECK(countOf(page,
                "<div class=\"legend\"><span>Median score</span><span>0.2</span><span class=\"ramp\"") == 1);
  CHECK(countOf(page, "<span>0.8</span>") == 1);
  CHECK(countOf(page, "linear-gradient(to right,#ffffb2,#fecc5c,#fd8d3c,#f03b20,#bd0026)") == 1);
  CHECK(countOf(page, "No data (1)") == 1);
  // The tooltip's data: names once, and per panel the value line and notes.
  CHECK(countOf(
            page,
            R"({"names":["Bosso","Chanchaga","Gurara","Kontagora"],"panels":[{"t":["Median score: 0.2",)") ==
        1);
  CHECK(countOf(page, R"("n":["rank 3 of 4","rank 1 of 4","","rank 2 of 4"]}]})") == 1);

  // One value everywhere takes the middle of the ramp; all missing shows no ramp.
  MapPanel flat = scorePanel("Flat");
  flat.values = {0.4, 0.4, 0.4, 0.4};
  const std::string flat_page = renderMapPage(fourWards(), pageWith({flat}));
  CHECK(countOf(flat_page, "fill=\"#fd8d3c\"") == 4);
  MapPanel missing = scorePanel("Missing");
  missing.values = {std::nullopt, std::numeric_limits<double>::quiet_NaN()};  // and two short
  const std::string missing_page = renderMapPage(fourWards(), pageWith({missing}));
  CHECK(countOf(missing_page, "fill=\"#d9d9d9\"") == 4);
  CHECK(countOf(missing_page, "class=\"ramp\"") == 0);
  CHECK(countOf(missing_page, "No data (4)") == 1);
}

TEST_CASE("category panels use the three risk colours and count them in the legend", "[viz]") {
  const std::string page = renderMapPage(fourWards(), pageWith({categoryPanel()}));
  CHECK(countOf(page, "<use href=\"#w0\" fill=\"#fd8d3c\"/>") == 1);
  CHECK(countOf(page, "<use href=\"#w1\" fill=\"#a50026\"/>") == 1);
  CHECK(countOf(page, "<use href=\"#w2\" fill=\"#d9d9d9\"/>") == 1);
  CHECK(countOf(page, R"("t":["Category: Medium Risk","Category: High Risk","Category: No data",)") == 1);
  CHECK(countOf(page, "High Risk (2)</span>") == 1);
  CHECK(countOf(page, "Medium Risk (1)</span>") == 1);
  CHECK(countOf(page, "Low Risk (0)</span>") == 1);
  CHECK(countOf(page, "<i style=\"background:#ffffb2\"></i>") == 1);
  CHECK(countOf(page, "No data (1)") == 1);
  CHECK(countOf(page, "class=\"ramp\"") == 0);
}

TEST_CASE("hostile names, titles and notes are escaped in markup and in the script data", "[viz]") {
  MapPage page = pageWith({scorePanel("<b>Model</b> \"1\"")});
  page.title = "</title><script>alert(0)</script>";
  page.subtitle = "' onload='alert(3)";
  page.ward_names = {"<script>alert(1)</script>", "\"onmouseover=alert(2) x=\"", "</script><!--",
                     "Line\xE2\x80\xA8Para\xE2\x80\xA9"
                     "end & \xFF"};
  page.panels[0].notes = {"<img src=x onerror=alert(4)>", "", "", "a\\b\"c\n"};
  const std::string html = renderMapPage(fourWards(), page);

  CHECK(countOf(html, "<script") == 2);  // the data and the code, nothing injected
  CHECK(countOf(html, "</script>") == 2);
  CHECK(countOf(html, "<img") == 0);
  CHECK(countOf(html, "<b>") == 0);
  CHECK(countOf(html, "<!--") == 0);
  CHECK(countOf(html, "alert(0)</") == 0);
  CHECK(countOf(html, "' onload") == 0);
  CHECK(countOf(html, "<title>&lt;/title&gt;&lt;script&gt;alert(0)&lt;/script&gt;</title>") == 1);
  CHECK(countOf(html, "<p>&#39; onload=&#39;alert(3)</p>") == 1);
  CHECK(countOf(html, "onmouseover=alert(2) x=&quot;") == 0);  // names reach the page as script data only
  CHECK(countOf(html, "aria-label=\"&lt;b&gt;Model&lt;/b&gt; &quot;1&quot;\"") == 1);
  // Invalid UTF-8 becomes U+FFFD.
  CHECK(countOf(html, "\xFF") == 0);

  CHECK(countOf(html, R"("\u003cscript\u003ealert(1)\u003c/script\u003e")") == 1);
  CHECK(countOf(html, R"("\"onmouseover=alert(2) x=\"")") == 1);
  CHECK(countOf(html, R"("\u003c/script\u003e\u003c!--")") == 1);
  CHECK(countOf(html, R"("Line\u2028Para\u2029end \u0026 )"
                      "\xEF\xBF\xBD\"") == 1);
  CHECK(countOf(html, R"("\u003cimg src=x onerror=alert(4)\u003e")") == 1);
  CHECK(countOf(html, R"("a\\b\"c\n")") == 1);
}

TEST_CASE("the same input renders the same bytes", "[viz]") {
  stickyproxy::testing::TempDir dir;
  SyntheticOptions options;
  options.wards = 40;
  options.vertices_per_edge = 4;
  REQUIRE(writeSyntheticShapefileZip(makeSyntheticDataset(options), dir.file("wards.zip")).ok());
  ExtractedShapefile files;
  ShapefileLayer layer;
  REQUIRE(loadShapefileZip(dir.file("wards.zip"), dir.dir("out"), {}, {}, &files, &layer).ok());

  MapPage page;
  page.title = "Synthetic";
  MapPanel panel;
  panel.title = "Scores";
  for (size_t i = 0; i < layer.size(); ++i) {
    page.ward_names.emplace_back(layer.attribute(i, "WardName"));
    panel.values.emplace_back(static_cast<double>(i) / 7.0);
  }
  page.panels = {panel, panel};
  const std::string first = renderMapPage(WardOutlines::project(layer), page);
  const std::string second = renderMapPage(WardOutlines::project(layer), page);
  CHECK(first == second);
  CHECK(countOf(first, "<use ") == 2 * layer.size());
  CHECK(countOf(first, "<path id=\"w") == layer.size());
}

}  // namespace
}  // namespace stickyproxy::backend
