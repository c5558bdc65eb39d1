#include "backend/data/synthetic_data.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numbers>
#include <random>
#include <set>

#include <shapefil.h>
#include <zip.h>

#include "backend/data/csv_format.h"

namespace stickyproxy::backend {
namespace {

constexpr const char* kStateCode = "NIS";
constexpr const char* kStateName = "Niger";
constexpr const char* kLayerName = "niger_wards";

constexpr std::array<const char*, 16> kValueColumns = {"population",
                                                       "u5_tpr_rdt",
                                                       "pfpr",
                                                       "mean_rainfall",
                                                       "mean_EVI",
                                                       "mean_NDVI",
                                                       "NDWI",
                                                       "NDMI",
                                                       "distance_to_water",
                                                       "elevation",
                                                       "housing_quality",
                                                       "mean_soil_wetness",
                                                       "avgRAD",
                                                       "temp_mean",
                                                       "urbanPercentage",
                                                       "settlement_type"};

struct Lga {
  const char* name;
  const char* code;
};
// The LGAs of Niger State, with three-letter codes of our own.
constexpr std::array<Lga, 25> kLgas = {{
    {"Agaie", "AGA"},     {"Agwara", "AGR"},  {"Bida", "BID"},   {"Borgu", "BRG"},   {"Bosso", "BOS"},
    {"Chanchaga", "CHA"}, {"Edati", "EDA"},   {"Gbako", "GBA"},  {"Gurara", "GUR"},  {"Katcha", "KAT"},
    {"Kontagora", "KON"}, {"Lapai", "LAP"},   {"Lavun", "LAV"},  {"Magama", "MAG"},  {"Mariga", "MAR"},
    {"Mashegu", "MAS"},   {"Mokwa", "MOK"},   {"Muya", "MUY"},   {"Paikoro", "PAI"}, {"Rafi", "RAF"},
    {"Rijau", "RIJ"},     {"Shiroro", "SHI"}, {"Suleja", "SUL"}, {"Tafa", "TAF"},    {"Wushishi", "WUS"},
}};

// Names that real states repeat in many LGAs; a few wards get them on purpose.
constexpr std::array<const char*, 6> kCommonNames = {"Sabon Gari", "Tudun Wada", "Kasuwan Gari",
                                                     "Township",   "Central",    "Gidan Mangoro"};
constexpr std::array<const char*, 22> kOnsets = {"B",  "D",  "G",  "K",  "M", "N", "S",  "T",  "W", "Y", "Z",
                                                 "Ts", "Dz", "Gb", "Kp", "L", "R", "Sh", "Ch", "J", "F", "H"};
constexpr std::array<const char*, 7> kVowels = {"a", "i", "u", "o", "e", "ai", "au"};
constexpr std::array<const char*, 6> kPrefixes = {"Tudun ",   "Sabon ",  "Gidan ",
                                                  "Unguwan ", "Dutsen ", "Kasuwan "};

// WGS 84 geographic coordinates, as ESRI .prj files spell it.
constexpr const char* kWgs84Prj =
    "GEOGCS[\"GCS_WGS_1984\",DATUM[\"D_WGS_1984\",SPHEROID[\"WGS_1984\",6378137.0,298.257223563]],"
    "PRIMEM[\"Greenwich\",0.0],UNIT[\"Degree\",0.0174532925199433]]";

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Numbers from mt19937_64 through our own arithmetic: std::uniform_real_distribution and
// std::normal_distribution are allowed to differ between standard libraries.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  double uniform() { return std::ldexp(static_cast<double>(engine_() >> 11), -53); }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  size_t below(size_t n) { return std::min(n - 1, static_cast<size_t>(uniform() * static_cast<double>(n))); }
  double normal() {  // Box-Muller; one value per call keeps the draw count easy to follow
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::mt19937_64 engine_;
};

// A smooth random surface over the unit square: a few long plane waves, scaled to unit variance.
class SmoothField {
 public:
  SmoothField(Random& random, int waves) {
    double power = 0;
    for (int i = 0; i < waves; ++i) {
      const double angle = random.uniform(0, 2 * std::numbers::pi);
      const double frequency = random.uniform(0.5, 2.0);
      Wave wave{frequency * std::cos(angle), frequency * std::sin(angle),
                random.uniform(0, 2 * std::numbers::pi), random.uniform(0.5, 1.0)};
      power += wave.amplitude * wave.amplitude / 2;
      waves_.push_back(wave);
    }
    scale_ = 1.0 / std::sqrt(power);
  }

  double at(double u, double v) const {
    double sum = 0;
    for (const Wave& wave : waves_) {
      sum += wave.amplitude * std::cos(2 * std::numbers::pi * (wave.fx * u + wave.fy * v) + wave.phase);
    }
    return sum * scale_;
  }

 private:
  struct Wave {
    double fx;
    double fy;
    double phase;
    double amplitude;
  };
  std::vector<Wave> waves_;
  double scale_ = 1;
};

// The jittered lattice under the cells. Cell (row r, col c) has corners lattice (c, r) top-left
// to (c+1, r+1) bottom-right; row 0 is the northern edge. Every corner and every edge is computed
// from the lattice alone, so two cells sharing an edge get bit-identical vertices.
class Lattice {
 public:
  Lattice(Random& random, int cols, int rows, double cell, double west, double north)
      : cols_(cols), cell_(cell) {
    for (int j = 0; j <= rows; ++j) {
      for (int i = 0; i <= cols; ++i) {
        const double jx = random.uniform(-0.15, 0.15);
        const double jy = random.uniform(-0.15, 0.15);
        corners_.push_back({west + (i + jx) * cell, north - (j + jy) * cell});
      }
    }
    // Wiggles small enough that a cell's opposite edges never meet and corners stay open:
    // the largest slope they add near a corner is about pi * (0.06 + 2*0.03 + 3*0.015).
    auto wiggle = [&random] {
      return std::array<double, 3>{random.uniform(-0.06, 0.06), random.uniform(-0.03, 0.03),
                                   random.uniform(-0.015, 0.015)};
    };
    for (int j = 0; j <= rows; ++j) {
      for (int i = 0; i < cols; ++i) horizontal_.push_back(wiggle());
    }
    for (int j = 0; j < rows; ++j) {
      for (int i = 0; i <= cols; ++i) vertical_.push_back(wiggle());
    }
  }

  // The closed clockwise ring of cell (row, col) with `extra` vertices inside every edge.
  std::vector<Point> ring(int row, int col, size_t extra) const {
    std::vector<Point> points;
    auto append = [&points](std::vector<Point> edge, bool reversed) {
      if (reversed) std::reverse(edge.begin(), edge.end());
      points.insert(points.end(), edge.begin(), edge.end() - 1);
    };
    append(edge(corner(col, row), corner(col + 1, row), horizontal_[index(col, row, cols_)], extra), false);
    append(edge(corner(col + 1, row), corner(col + 1, row + 1), vertical_[index(col + 1, row, cols_ + 1)],
                extra),
           false);
    append(
        edge(corner(col, row + 1), corner(col + 1, row + 1), horizontal_[index(col, row + 1, cols_)], extra),
        true);
    append(edge(corner(col, row), corner(col, row + 1), vertical_[index(col, row, cols_ + 1)], extra), true);
    points.push_back(points.front());
    return points;
  }

 private:
  static size_t index(int i, int j, int width) {
    return static_cast<size_t>(j) * static_cast<size_t>(width) + static_cast<size_t>(i);
  }
  Point corner(int i, int j) const { return corners_[index(i, j, cols_ + 1)]; }

  // From `a` to `b` inclusive, bent sideways by three sine harmonics that vanish at both ends.
  std::vector<Point> edge(Point a, Point b, const std::array<double, 3>& wiggle, size_t extra) const {
    std::vector<Point> points;
    points.reserve(extra + 2);
    points.push_back(a);
    const double dx = b.x - a.x;
    const double dy = b.y - a.y;
    const double length = std::hypot(dx, dy);
    for (size_t k = 1; k <= extra; ++k) {
      const double t = static_cast<double>(k) / static_cast<double>(extra + 1);
      const double offset = cell_ * (wiggle[0] * std::sin(std::numbers::pi * t) +
                                     wiggle[1] * std::sin(2 * std::numbers::pi * t) +
                                     wiggle[2] * std::sin(3 * std::numbers::pi * t));
      points.push_back({a.x + t * dx - offset * dy / length, a.y + t * dy + offset * dx / length});
    }
    points.push_back(b);
    return points;
  }

  int cols_;
  double cell_;
  std::vector<Point> corners_;
  std::vector<std::array<double, 3>> horizontal_;
  std::vector<std::array<double, 3>> vertical_;
};

double clampTo(double value, double lo, double hi) { return std::min(hi, std::max(lo, value)); }

std::string fixed(double value, int precision) {
  const double scale = std::pow(10.0, precision);
  double rounded = std::round(value * scale) / scale;
  if (rounded == 0) rounded = 0;  // no "-0.000"
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, rounded, std::chars_format::fixed, precision);
  return std::string(buffer, result.ptr);
}

std::string makeName(Random& random) {
  std::string name;
  if (random.uniform() < 0.18) name = kPrefixes[random.below(kPrefixes.size())];
  const size_t syllables = 2 + random.below(2);
  const size_t start = name.size();
  for (size_t s = 0; s < syllables; ++s) {
    name += kOnsets[random.below(kOnsets.size())];
    name += kVowels[random.below(kVowels.size())];
  }
  if (random.uniform() < 0.3) name += random.uniform() < 0.5 ? "n" : "ri";
  for (size_t i = start + 1; i < name.size(); ++i) {
    if (name[i] >= 'A' && name[i] <= 'Z') name[i] = static_cast<char>(name[i] - 'A' + 'a');
  }
  return name;
}

DataStatus ioError(const std::string& what) { return DataStatus::error(DataError::kIo, what); }

std::string parentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool writeFile(const std::string& path, std::string_view content) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  bool ok = std::fwrite(content.data(), 1, content.size(), file) == content.size();
  ok = std::fflush(file) == 0 && ok;
  ok = ::fsync(::fileno(file)) == 0 && ok;
  return std::fclose(file) == 0 && ok;
}

uint64_t fileSize(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<uint64_t>(info.st_size) : 0;
}

// Removes a flat directory of files this module created.
void removeDirectory(const std::string& dir) {
  if (DIR* handle = ::opendir(dir.c_str())) {
    while (dirent* entry = ::readdir(handle)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(handle);
  }
  ::rmdir(dir.c_str());
}

void silentShapelibError(const char*) {}

}  // namespace

std::vector<std::string> SyntheticDataset::csvColumns() const {
  std::vector<std::string> columns = {"WardName", "WardCode", "LGACode", "LGAName", "StateCode", "StateName"};
  columns.insert(columns.end(), value_columns.begin(), value_columns.end());
  return columns;
}

SyntheticDataset makeSyntheticDataset(const SyntheticOptions& options) {
  const size_t count = std::clamp<size_t>(options.wards, 1, 20000);
  Random geometry(splitmix64(options.seed ^ 0x67656F6D65747279ull));
  Random attributes(splitmix64(options.seed ^ 0x6174747269627574ull));

  // A grid about twice the ward count, wider than tall, from which a star-shaped outline with a
  // wavy border (radius varying with angle) takes the `count` most central cells.
  const int rows =
      std::max(1, static_cast<int>(std::ceil(std::sqrt(2.0 * static_cast<double>(count) / 1.25))));
  const int cols = std::max(1, static_cast<int>(std::ceil(2.0 * static_cast<double>(count) / rows)));
  std::array<double, 6> outline{};
  for (size_t k = 0; k < 3; ++k) {
    outline[2 * k] = geometry.uniform(0.04, 0.14);
    outline[2 * k + 1] = geometry.uniform(0, 2 * std::numbers::pi);
  }
  struct Candidate {
    double score;
    int row;
    int col;
  };
  std::vector<Candidate> candidates;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double u = 2.0 * (c + 0.5) / cols - 1.0;
      const double v = 2.0 * (r + 0.5) / rows - 1.0;
      const double angle = std::atan2(v, u);
      const double radius = 1.0 + outline[0] * std::sin(2 * angle + outline[1]) +
                            outline[2] * std::sin(3 * angle + outline[3]) +
                            outline[4] * std::sin(5 * angle + outline[5]);
      candidates.push_back({std::hypot(u, v) / radius, r, c});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score < b.score; });
  candidates.resize(count);
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.row != b.row ? a.row < b.row : a.col < b.col;
  });

  // Niger State covers about 6.3 square degrees around 5.7 E, 9.9 N.
  const double cell = std::sqrt(6.3 / static_cast<double>(count));
  const Lattice lattice(geometry, cols, rows, cell, 5.7 - cols * cell / 2, 9.9 + rows * cell / 2);

  const size_t detail = std::min(options.vertices_per_edge, kMaxSyntheticVertices / (4 * count) - 1);
  SyntheticDataset dataset;
  dataset.state_code = kStateCode;
  dataset.state_name = kStateName;
  dataset.value_columns.assign(kValueColumns.begin(), kValueColumns.end());
  dataset.wards.resize(count);
  for (size_t w = 0; w < count; ++w) {
    dataset.wards[w].grid_row = candidates[w].row;
    dataset.wards[w].grid_col = candidates[w].col;
    dataset.wards[w].ring = lattice.ring(candidates[w].row, candidates[w].col, detail);
  }

  // LGAs: well-spread seed cells (best of a few random candidates each), every ward joining the
  // nearest seed, which keeps each LGA a compact block of neighbouring wards.
  const size_t lga_count = std::min<size_t>({kLgas.size(), count, std::max<size_t>(4, (count + 6) / 12)});
  std::vector<size_t> seeds = {attributes.below(count)};
  auto grid_distance2 = [&dataset](size_t a, size_t b) {
    const double dr = dataset.wards[a].grid_row - dataset.wards[b].grid_row;
    const double dc = dataset.wards[a].grid_col - dataset.wards[b].grid_col;
    return dr * dr + dc * dc;
  };
  while (seeds.size() < lga_count) {
    size_t best = 0;
    double best_distance = -1;
    for (int attempt = 0; attempt < 8; ++attempt) {
      const size_t candidate = attributes.below(count);
      double nearest = 1e300;
      for (size_t seed : seeds) nearest = std::min(nearest, grid_distance2(candidate, seed));
      if (nearest > best_distance) {
        best_distance = nearest;
        best = candidate;
      }
    }
    if (best_distance <= 0) {  // every attempt hit a seed: take the first free ward
      for (best = 0; std::find(seeds.begin(), seeds.end(), best) != seeds.end(); ++best) {
      }
    }
    seeds.push_back(best);
  }
  std::vector<size_t> lga_of(count);
  for (size_t w = 0; w < count; ++w) {
    size_t nearest = 0;
    for (size_t s = 1; s < seeds.size(); ++s) {
      if (grid_distance2(w, seeds[s]) < grid_distance2(w, seeds[nearest])) nearest = s;
    }
    lga_of[w] = nearest;
    dataset.wards[w].lga_name = kLgas[nearest].name;
    dataset.wards[w].lga_code = kLgas[nearest].code;
  }
  std::vector<int> next_number(lga_count, 1);
  for (size_t w = 0; w < count; ++w) {  // grid order: numbers run north to south, west to east
    char number[16];
    std::snprintf(number, sizeof number, "%02d", next_number[lga_of[w]]++);
    dataset.wards[w].ward_code = std::string(kStateCode) + kLgas[lga_of[w]].code + number;
  }

  // Names: a few common names shared by two wards of different LGAs, the rest unique.
  std::set<std::string> used(kCommonNames.begin(), kCommonNames.end());
  const size_t shared_names = std::min<size_t>(kCommonNames.size(), std::clamp<size_t>(count / 100, 2, 6));
  for (size_t n = 0; n < shared_names && lga_count > 1; ++n) {
    for (int attempt = 0; attempt < 64; ++attempt) {
      const size_t a = attributes.below(count);
      const size_t b = attributes.below(count);
      if (lga_of[a] == lga_of[b] || !dataset.wards[a].ward_name.empty() ||
          !dataset.wards[b].ward_name.empty()) {
        continue;
      }
      dataset.wards[a].ward_name = kCommonNames[n];
      dataset.wards[b].ward_name = kCommonNames[n];
      break;
    }
  }
  for (SyntheticWard& ward : dataset.wards) {
    if (!ward.ward_name.empty()) continue;
    do {
      ward.ward_name = makeName(attributes);
    } while (!used.insert(ward.ward_name).second);
  }

  // Covariates from smooth fields and towns, so that neighbouring wards look alike.
  SmoothField elevation_field(attributes, 5);
  SmoothField rain_field(attributes, 5);
  SmoothField vegetation_field(attributes, 5);
  SmoothField water_field(attributes, 5);
  SmoothField housing_field(attributes, 5);
  SmoothField temperature_field(attributes, 5);
  SmoothField risk_field(attributes, 5);
  struct Town {
    size_t ward;
    double weight;
    double sigma;
  };
  std::vector<Town> towns;
  const size_t town_count = 3 + count / 150;
  for (size_t t = 0; t < town_count; ++t) {
    towns.push_back({attributes.below(count), t == 0 ? 1.0 : attributes.uniform(0.55, 0.9),
                     t == 0 ? 1.7 : attributes.uniform(0.7, 1.2)});
  }

  size_t missing_cells = 0;
  for (size_t w = 0; w < count; ++w) {
    SyntheticWard& ward = dataset.wards[w];
    const double u = (ward.grid_col + 0.5) / cols;
    const double v = (ward.grid_row + 0.5) / rows;  // 0 north, 1 south
    double urban = 0;
    for (const Town& town : towns) {
      urban = std::max(urban,
                       town.weight * std::exp(-grid_distance2(w, town.ward) / (2 * town.sigma * town.sigma)));
    }
    urban = clampTo(urban + 0.04 * attributes.normal(), 0, 1);

    const double elevation =
        clampTo(320 + 170 * elevation_field.at(u, v) + 25 * attributes.normal(), 60, 950);
    const double temperature = clampTo(27.6 + 1.2 * (0.5 - v) - 0.0055 * (elevation - 300) +
                                           0.35 * temperature_field.at(u, v) + 0.15 * attributes.normal(),
                                       23, 32);
    const double rainfall =
        clampTo(135 + 60 * (v - 0.5) + 18 * rain_field.at(u, v) + 4 * attributes.normal(), 70, 230);
    const double distance = clampTo(
        std::exp(std::log(2200.0) + 0.8 * water_field.at(u, v) + 0.35 * attributes.normal()), 40, 30000);
    const double water_term = std::log10(distance / 2200);
    const double soil = clampTo(0.2 + 0.0012 * (rainfall - 135) - 0.03 * water_term +
                                    0.03 * rain_field.at(u, v) + 0.012 * attributes.normal(),
                                0.04, 0.55);
    const double ndvi = clampTo(0.42 + 0.0016 * (rainfall - 135) - 0.25 * urban +
                                    0.06 * vegetation_field.at(u, v) + 0.02 * attributes.normal(),
                                0.08, 0.85);
    const double evi = clampTo(0.6 * ndvi - 0.01 + 0.012 * attributes.normal(), 0.05, 0.6);
    const double ndwi =
        clampTo(-0.5 * ndvi + 0.03 - 0.02 * water_term + 0.015 * attributes.normal(), -0.6, 0.3);
    const double ndmi =
        clampTo(0.55 * ndvi - 0.1 + 0.4 * (soil - 0.2) + 0.015 * attributes.normal(), -0.3, 0.55);
    const double radiance =
        clampTo(0.2 + 42 * std::pow(urban, 1.6) + 0.15 * std::fabs(attributes.normal()), 0, 85);
    const double housing =
        clampTo(0.28 + 0.5 * urban + 0.07 * housing_field.at(u, v) + 0.04 * attributes.normal(), 0.02, 0.98);
    const double urban_percentage = clampTo(100 * urban + 4 * attributes.normal(), 0, 100);
    const double population =
        std::round(std::exp(std::log(11000.0) + 1.9 * urban + 0.3 * attributes.normal()));
    // Wetter, greener, closer to water and poorer housing mean more malaria; towns mean less.
    const double risk = 0.45 * (rainfall - 135) / 25 + 0.35 * (soil - 0.2) / 0.05 + 0.3 * (ndvi - 0.4) / 0.1 -
                        0.35 * std::log(distance / 2200) / 0.8 - 1.6 * urban - 0.3 * (housing - 0.35) / 0.15 +
                        0.35 * risk_field.at(u, v) + 0.25 * attributes.normal();
    const double pfpr = clampTo(0.04 + 0.58 / (1 + std::exp(-risk)), 0.01, 0.8);
    const double tpr = clampTo(100 * (1.15 * pfpr + 0.06 + 0.04 * attributes.normal()), 2, 95);
    ward.urban = urban > 0.55;
    const char* settlement = urban > 0.55 ? "Urban" : urban > 0.25 ? "Peri-urban" : "Rural";

    ward.values = {fixed(population, 0),
                   fixed(tpr, 2),
                   fixed(pfpr, 4),
                   fixed(rainfall, 2),
                   fixed(evi, 4),
                   fixed(ndvi, 4),
                   fixed(ndwi, 4),
                   fixed(ndmi, 4),
                   fixed(distance, 1),
                   fixed(elevation, 1),
                   fixed(housing, 3),
                   fixed(soil, 4),
                   fixed(radiance, 3),
                   fixed(temperature, 2),
                   fixed(urban_percentage, 2),
                   settlement};
    // Gaps as survey data has them; never in population or the settlement type.
    for (size_t column = 1; column + 1 < ward.values.size(); ++column) {
      if (attributes.uniform() < 0.012) {
        ward.values[column] = attributes.uniform() < 0.8 ? "NA" : "";
        ++missing_cells;
      }
    }
  }
  if (missing_cells == 0) dataset.wards[count / 2].values[2] = "NA";
  return dataset;
}

DataStatus writeSyntheticCsv(const SyntheticDataset& dataset, const std::string& path) {
  std::string text;
  // LF record ends, as the generator always wrote them: the same options keep giving the same bytes.
  const auto append_row = [&text](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) text += csv::kDelimiter;
      csv::appendField(text, cells[i]);
    }
    text += '\n';
  };
  append_row(dataset.csvColumns());
  std::vector<const SyntheticWard*> order;
  for (const SyntheticWard& ward : dataset.wards) order.push_back(&ward);
  std::sort(order.begin(), order.end(),
            [](const SyntheticWard* a, const SyntheticWard* b) { return a->ward_code < b->ward_code; });
  for (const SyntheticWard* ward : order) {
    std::vector<std::string> cells = {ward->ward_name, ward->ward_code,    ward->lga_code,
                                      ward->lga_name,  dataset.state_code, dataset.state_name};
    cells.insert(cells.end(), ward->values.begin(), ward->values.end());
    append_row(cells);
  }
  const std::string temp = path + ".tmp";
  if (!writeFile(temp, text)) {
    ::unlink(temp.c_str());
    return ioError("Cannot write " + temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    return ioError("Cannot rename " + temp + " to " + path);
  }
  return DataStatus();
}

DataStatus writeSyntheticShapefileZip(const SyntheticDataset& dataset, const std::string& path) {
  std::string dir_template = parentDir(path) + "/.gendata-XXXXXX";
  if (::mkdtemp(dir_template.data()) == nullptr)
    return ioError("Cannot create a temporary directory beside " + path);
  const std::string dir = dir_template;
  struct DirRemover {
    std::string dir;
    ~DirRemover() { removeDirectory(dir); }
  } remover{dir};
  const std::string base = dir + "/" + kLayerName;

  SAHooks hooks;
  SASetupDefaultHooks(&hooks);
  hooks.Error = silentShapelibError;
  SHPHandle shp = SHPCreateLL((base + ".shp").c_str(), SHPT_POLYGON, &hooks);
  if (shp == nullptr) return ioError("Cannot create " + base + ".shp");
  DBFHandle dbf = DBFCreateLL((base + ".dbf").c_str(), "UTF-8", &hooks);
  if (dbf == nullptr) {
    SHPClose(shp);
    return ioError("Cannot create " + base + ".dbf");
  }
  DBFSetLastModifiedDate(dbf, 124, 1, 1);  // a fixed date keeps the bytes reproducible
  const std::array<std::pair<const char*, int>, 7> fields = {{{"WardCode", 12},
                                                              {"WardName", 48},
                                                              {"LGACode", 6},
                                                              {"LGAName", 32},
                                                              {"StateCode", 6},
                                                              {"StateName", 24},
                                                              {"Urban", 3}}};
  bool ok = true;
  for (const auto& [name, width] : fields) ok = ok && DBFAddField(dbf, name, FTString, width, 0) >= 0;

  const int part_start = 0;
  std::vector<double> xs;
  std::vector<double> ys;
  for (const SyntheticWard& ward : dataset.wards) {
    if (!ok) break;
    xs.clear();
    ys.clear();
    for (const Point& point : ward.ring) {
      xs.push_back(point.x);
      ys.push_back(point.y);
    }
    SHPObject* object = SHPCreateObject(SHPT_POLYGON, -1, 1, &part_start, nullptr,
                                        static_cast<int>(xs.size()), xs.data(), ys.data(), nullptr, nullptr);
    const int record = SHPWriteObject(shp, -1, object);
    SHPDestroyObject(object);
    ok = record >= 0;
    const std::array<const char*, 7> values = {ward.ward_code.c_str(),     ward.ward_name.c_str(),
                                               ward.lga_code.c_str(),      ward.lga_name.c_str(),
                                               dataset.state_code.c_str(), dataset.state_name.c_str(),
                                               ward.urban ? "Yes" : "No"};
    for (size_t field = 0; ok && field < values.size(); ++field) {
      ok = DBFWriteStringAttribute(dbf, record, static_cast<int>(field), values[field]) != 0;
    }
  }
  SHPClose(shp);
  DBFClose(dbf);
  if (!ok) return ioError("Writing the shapefile " + base + " failed");
  if (!writeFile(base + ".prj", kWgs84Prj)) return ioError("Cannot write " + base + ".prj");

  const std::string temp_zip = path + ".tmp";
  int error = 0;
  zip_t* archive = zip_open(temp_zip.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) return ioError("Cannot create " + temp_zip);
  // DOS date 2024-01-01 00:00: a fixed time, set directly so the time zone cannot change it.
  constexpr zip_uint16_t kDosTime = 0;
  constexpr zip_uint16_t kDosDate = ((2024 - 1980) << 9) | (1 << 5) | 1;
  for (const char* ext : {"shp", "shx", "dbf", "prj", "cpg"}) {
    const std::string file = base + "." + ext;
    const std::string entry = std::string(kLayerName) + "." + ext;
    zip_source_t* source = zip_source_file(archive, file.c_str(), 0, -1);
    const zip_int64_t index =
        source == nullptr ? -1 : zip_file_add(archive, entry.c_str(), source, ZIP_FL_OVERWRITE);
    if (index < 0) {
      if (source != nullptr) zip_source_free(source);
      zip_discard(archive);
      ::unlink(temp_zip.c_str());
      return ioError("Cannot add " + file + " to " + temp_zip);
    }
    const auto at = static_cast<zip_uint64_t>(index);
    if (zip_set_file_compression(archive, at, ZIP_CM_DEFLATE, 6) != 0 ||
        zip_file_set_dostime(archive, at, kDosTime, kDosDate, 0) != 0 ||
        zip_file_set_external_attributes(archive, at, 0, ZIP_OPSYS_UNIX, 0100644u << 16) != 0) {
      zip_discard(archive);
      ::unlink(temp_zip.c_str());
      return ioError("Cannot set the attributes of " + entry);
    }
  }
  if (zip_close(archive) != 0) {
    std::string reason = zip_strerror(archive);
    zip_discard(archive);
    ::unlink(temp_zip.c_str());
    return ioError("Cannot write " + temp_zip + ": " + reason);
  }
  if (::rename(temp_zip.c_str(), path.c_str()) != 0) {
    ::unlink(temp_zip.c_str());
    return ioError("Cannot rename " + temp_zip + " to " + path);
  }
  return DataStatus();
}

DataStatus writeSyntheticData(const SyntheticOptions& options, const std::string& out_dir,
                              SyntheticFiles* files) {
  *files = SyntheticFiles();
  const SyntheticDataset dataset = makeSyntheticDataset(options);
  files->csv_path = out_dir + "/wards.csv";
  files->zip_path = out_dir + "/wards_shapefile.zip";
  DataStatus status = writeSyntheticCsv(dataset, files->csv_path);
  if (!status.ok()) return status;
  status = writeSyntheticShapefileZip(dataset, files->zip_path);
  if (!status.ok()) return status;
  files->csv_bytes = fileSize(files->csv_path);
  files->zip_bytes = fileSize(files->zip_path);
  return DataStatus();
}

}  // namespace stickyproxy::backend
