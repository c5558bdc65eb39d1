#include "backend/data/ward_join.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "backend/data/synthetic_data.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

// A generated dataset, its shapefile read back, and helpers to write CSV variants of it.
struct Fixture {
  explicit Fixture(uint64_t seed = 5, size_t wards = 260) {
    SyntheticOptions options;
    options.seed = seed;
    options.wards = wards;
    options.vertices_per_edge = 2;
    dataset = makeSyntheticDataset(options);
    REQUIRE(writeSyntheticShapefileZip(dataset, dir.file("wards.zip")).ok());
    ExtractedShapefile files;
    REQUIRE(loadShapefileZip(dir.file("wards.zip"), dir.dir("shape"), {}, {}, &files, &layer).ok());
  }

  // Writes a CSV with the given columns (WardName, WardCode, LGAName or pfpr) for `wards`.
  const CsvTable& csv(const std::vector<std::string>& columns,
                      const std::vector<const SyntheticWard*>& wards) {
    std::string text;
    for (size_t i = 0; i < columns.size(); ++i) text += (i ? "," : "") + columns[i];
    text += "\n";
    for (const SyntheticWard* ward : wards) {
      for (size_t i = 0; i < columns.size(); ++i) {
        const std::string& column = columns[i];
        text += i ? "," : "";
        text += column == "WardName"   ? ward->ward_name
                : column == "WardCode" ? ward->ward_code
                : column == "LGAName"  ? ward->lga_name
                                       : ward->values[2];
      }
      text += "\n";
    }
    writeFile(dir.file("wards.csv"), text);
    REQUIRE(CsvTable::read(dir.file("wards.csv"), {}, &table).ok());
    return table;
  }

  std::vector<const SyntheticWard*> allWards() const {
    std::vector<const SyntheticWard*> wards;
    for (const SyntheticWard& ward : dataset.wards) wards.push_back(&ward);
    std::reverse(wards.begin(), wards.end());  // CSV order differs from the shapefile's
    return wards;
  }

  TempDir dir;
  SyntheticDataset dataset;
  ShapefileLayer layer;
  CsvTable table;
};

std::map<std::string, size_t> nameCounts(const SyntheticDataset& dataset) {
  std::map<std::string, size_t> counts;
  for (const SyntheticWard& ward : dataset.wards) ++counts[ward.ward_name];
  return counts;
}

TEST_CASE("rows join their polygons on WardCode and shared names get code-prefixed keys", "[data]") {
  Fixture fixture;
  const CsvTable& table = fixture.csv({"WardName", "WardCode", "LGAName", "pfpr"}, fixture.allWards());
  const WardJoin join = joinWards(table, fixture.layer);
  CHECK(join.matched_by_code == fixture.dataset.wards.size());
  CHECK(join.matched_by_name == 0);
  CHECK(join.unmatched_rows.empty());
  CHECK(join.unmatched_shapes.empty());

  const auto counts = nameCounts(fixture.dataset);
  size_t disambiguated = 0;
  std::set<std::string> keys;
  for (size_t row = 0; row < table.rowCount(); ++row) {
    REQUIRE(join.shape_of_row[row]);
    const size_t shape = *join.shape_of_row[row];
    CHECK(fixture.layer.attribute(shape, "WardCode") == table.column("WardCode")->cell(row));
    CHECK(join.row_of_shape[shape] == row);
    CHECK(join.row_matched_by[row] == JoinKey::kWardCode);
    const std::string name(table.column("WardName")->cell(row));
    if (counts.at(name) > 1) {
      CHECK(join.row_keys[row] == std::string(table.column("WardCode")->cell(row)) + "_" + name);
      ++disambiguated;
    } else {
      CHECK(join.row_keys[row] == name);
    }
    CHECK(join.shape_keys[shape] == join.row_keys[row]);
    keys.insert(join.row_keys[row]);
  }
  CHECK(disambiguated >= 4);  // the generator plants at least two names twice
  CHECK(keys.size() == table.rowCount());
}

TEST_CASE("without WardCode rows join on WardName, using LGAName to split shared names", "[data]") {
  Fixture fixture;
  const WardJoin join =
      joinWards(fixture.csv({"WardName", "LGAName", "pfpr"}, fixture.allWards()), fixture.layer);
  CHECK(join.matched_by_name == fixture.dataset.wards.size());
  CHECK(join.unmatched_rows.empty());
  for (size_t row = 0; row < join.shape_of_row.size(); ++row) {
    REQUIRE(join.shape_of_row[row]);
    CHECK(fixture.layer.attribute(*join.shape_of_row[row], "LGAName") ==
          fixture.table.column("LGAName")->cell(row));
  }
  // Names compare ignoring case, spacing and punctuation.
  std::string text = "WardName,pfpr\n";
  text += "  " + fixture.dataset.wards[0].ward_name + "  ,0.3\n";
  std::string shouted = fixture.dataset.wards[1].ward_name;
  std::transform(shouted.begin(), shouted.end(), shouted.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  text += shouted + ".,0.4\n";
  writeFile(fixture.dir.file("loose.csv"), text);
  CsvTable loose;
  REQUIRE(CsvTable::read(fixture.dir.file("loose.csv"), {}, &loose).ok());
  const WardJoin loose_join = joinWards(loose, fixture.layer);
  CHECK(loose_join.shape_of_row[0] == 0u);
  CHECK(loose_join.shape_of_row[1] == 1u);
}

TEST_CASE("an unknown code falls back to the name; shared names without LGA stay unmatched", "[data]") {
  Fixture fixture;
  const auto counts = nameCounts(fixture.dataset);
  std::string text = "WardName,WardCode,pfpr\n";
  const SyntheticWard* unique = nullptr;
  const SyntheticWard* shared = nullptr;
  for (const SyntheticWard& ward : fixture.dataset.wards) {
    if (counts.at(ward.ward_name) == 1 && unique == nullptr) unique = &ward;
    if (counts.at(ward.ward_name) == 2 && shared == nullptr) shared = &ward;
  }
  REQUIRE(unique != nullptr);
  REQUIRE(shared != nullptr);
  text += unique->ward_name + ",WRONG01,0.1\n";  // code typo, name still unique
  text += shared->ward_name + ",,0.2\n";         // no code, and the name is in two LGAs
  text += "Nowhere,NISXXX99,0.3\n";
  writeFile(fixture.dir.file("partial.csv"), text);
  CsvTable table;
  REQUIRE(CsvTable::read(fixture.dir.file("partial.csv"), {}, &table).ok());

  const WardJoin join = joinWards(table, fixture.layer);
  CHECK(join.row_matched_by[0] == JoinKey::kWardName);
  CHECK(fixture.layer.attribute(*join.shape_of_row[0], "WardCode") == unique->ward_code);
  CHECK(join.matched_by_code == 0);
  CHECK(join.matched_by_name == 1);
  REQUIRE(join.unmatched_rows.size() == 2);
  CHECK(join.unmatched_rows[0].index == 1);
  CHECK_THAT(join.unmatched_rows[0].reason, Catch::Contains("matches 2 wards"));
  CHECK(join.unmatched_rows[1].label == "Nowhere (NISXXX99)");
  CHECK_THAT(join.unmatched_rows[1].reason, Catch::Contains("no ward with its WardCode or WardName"));
  CHECK(join.unmatched_shapes.size() == fixture.dataset.wards.size() - 1);
  CHECK_THAT(join.unmatched_shapes[0].reason, Catch::Contains("no row"));

  const picojson::value json(join.toJson(3));
  CHECK(json.get("matched_wards").get<double>() == 1);
  CHECK(json.get("matched_by_name").get<double>() == 1);
  CHECK(json.get("unmatched_csv_count").get<double>() == 2);
  CHECK(json.get("unmatched_csv_wards").get(1).get<std::string>() == "Nowhere (NISXXX99)");
  CHECK(json.get("unmatched_shapefile_count").get<double>() == fixture.dataset.wards.size() - 1);
  CHECK(json.get("unmatched_shapefile_wards").get<picojson::array>().size() == 3);
}

TEST_CASE("duplicate codes match once and the rest are reported on both sides", "[data]") {
  Fixture fixture;
  std::vector<const SyntheticWard*> wards = fixture.allWards();
  const SyntheticWard* dropped = wards.back();
  wards.pop_back();
  wards.push_back(wards.front());  // the same ward twice
  const WardJoin join = joinWards(fixture.csv({"WardCode", "WardName", "pfpr"}, wards), fixture.layer);
  CHECK(join.matched_by_code == fixture.dataset.wards.size() - 1);
  REQUIRE(join.unmatched_rows.size() == 1);
  CHECK(join.unmatched_rows[0].index == wards.size() - 1);
  CHECK_THAT(join.unmatched_rows[0].reason, Catch::Contains("appears twice in the CSV"));
  REQUIRE(join.unmatched_shapes.size() == 1);
  CHECK(join.unmatched_shapes[0].label == dropped->ward_name + " (" + dropped->ward_code + ")");
  // Two rows with one name: both keys carry the code, and are made unique.
  CHECK(join.row_keys[0] != join.row_keys.back());
}

TEST_CASE("generated wards neighbour exactly the cells beside them, symmetrically", "[data]") {
  for (size_t detail : {0u, 5u}) {
    INFO("vertices per edge " << detail);
    SyntheticOptions options;
    options.seed = 3;
    options.wards = 320;
    options.vertices_per_edge = detail;
    const SyntheticDataset dataset = makeSyntheticDataset(options);
    std::vector<WardShape> shapes(dataset.wards.size());
    std::map<std::pair<int, int>, size_t> at;
    for (size_t i = 0; i < shapes.size(); ++i) {
      shapes[i].rings.push_back(dataset.wards[i].ring);
      at[{dataset.wards[i].grid_row, dataset.wards[i].grid_col}] = i;
    }
    const Adjacency adjacency = computeAdjacency(shapes);
    size_t interior = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
      std::vector<size_t> expected;
      const int row = dataset.wards[i].grid_row;
      const int col = dataset.wards[i].grid_col;
      for (auto [dr, dc] : {std::pair{-1, 0}, {1, 0}, {0, -1}, {0, 1}}) {
        auto it = at.find({row + dr, col + dc});
        if (it != at.end()) expected.push_back(it->second);
      }
      std::sort(expected.begin(), expected.end());
      CHECK(adjacency[i] == expected);  // diagonal cells touch at one corner only: not neighbours
      for (size_t neighbour : adjacency[i]) {
        CHECK(std::binary_search(adjacency[neighbour].begin(), adjacency[neighbour].end(), i));
      }
      if (expected.size() == 4) {
        ++interior;
        CHECK(adjacency[i].size() >= 4);
      }
    }
    CHECK(interior > shapes.size() / 2);
  }
}

TEST_CASE("adjacency needs two shared vertices and maps onto CSV rows", "[data]") {
  auto square = [](double x, double y) {
    WardShape shape;
    shape.rings.push_back({{x, y + 1}, {x + 1, y + 1}, {x + 1, y}, {x, y}, {x, y + 1}});
    return shape;
  };
  // a b
  // c d   and e touching d at its bottom-right corner only.
  std::vector<WardShape> shapes = {square(0, 1), square(1, 1), square(0, 0), square(1, 0), square(2, -1)};
  const Adjacency adjacency = computeAdjacency(shapes);
  CHECK(adjacency[0] == std::vector<size_t>{1, 2});
  CHECK(adjacency[3] == std::vector<size_t>{1, 2});
  CHECK(adjacency[4].empty());

  WardJoin join;
  join.shape_of_row = {3, std::nullopt, 0, 1};
  join.row_of_shape = {2, 3, std::nullopt, 0, std::nullopt};
  const Adjacency rows = rowAdjacency(join, adjacency);
  CHECK(rows[0] == std::vector<size_t>{3});  // d's neighbours b (row 3) and c (no row)
  CHECK(rows[1].empty());
  CHECK(rows[2] == std::vector<size_t>{3});
}

TEST_CASE("adjacency of the largest generated layer links its 500 wards", "[data]") {
  SyntheticOptions options;
  options.wards = 500;
  options.vertices_per_edge = 256;
  const SyntheticDataset dataset = makeSyntheticDataset(options);
  std::vector<WardShape> shapes(dataset.wards.size());
  size_t vertices = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    shapes[i].rings.push_back(dataset.wards[i].ring);
    vertices += dataset.wards[i].ring.size();
  }
  // Speed is for benchmarks, not unit tests; a quadratic pass would still make this crawl.
  const Adjacency adjacency = computeAdjacency(shapes);
  CHECK(vertices > 500000);
  size_t links = 0;
  for (const auto& neighbours : adjacency) links += neighbours.size();
  CHECK(links > 1500);
}

}  // namespace
}  // namespace stickyproxy::backend
