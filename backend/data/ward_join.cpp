#include "backend/data/ward_join.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "backend/data/text_util.h"

namespace stickyproxy::backend {
namespace {

// Lower-case ASCII letters and digits (and any non-ASCII byte) kept; every run of anything else
// becomes one space, so "Sabon-Gari", "sabon  gari" and "Sabon Gari " compare equal.
std::string normalizeName(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool keep =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || byte >= 0x80;
    if (!keep) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) out.push_back(' ');
    pending_space = false;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

std::string normalizeCode(std::string_view text) { return lowerAscii(trimAscii(text)); }

std::string label(std::string_view name, std::string_view code) {
  name = trimAscii(name);
  code = trimAscii(code);
  if (name.empty()) return std::string(code);
  if (code.empty()) return std::string(name);
  return std::string(name) + " (" + std::string(code) + ")";
}

// Gives each entry its name, or "<code>_<name>" when the name is shared; then makes keys unique.
std::vector<std::string> displayKeys(const std::vector<std::string>& names,
                                     const std::vector<std::string>& codes) {
  std::unordered_map<std::string, size_t> name_count;
  for (const std::string& name : names) ++name_count[normalizeName(name)];
  std::vector<std::string> keys;
  std::unordered_set<std::string> used;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string key = names[i];
    if (name_count[normalizeName(names[i])] > 1 || key.empty()) {
      key = (codes[i].empty() ? "row" + std::to_string(i + 1) : codes[i]) + "_" + names[i];
    }
    if (!used.insert(key).second) {
      key += "_" + std::to_string(i + 1);
      used.insert(key);
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

struct VertexKey {
  int64_t x;
  int64_t y;
  bool operator==(const VertexKey&) const = default;
};

struct VertexKeyHash {
  size_t operator()(const VertexKey& key) const {
    // splitmix64 finaliser over both coordinates: neighbouring grid keys spread over all buckets.
    uint64_t h = static_cast<uint64_t>(key.x) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(key.y);
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return static_cast<size_t>(h);
  }
};

}  // namespace

WardJoin joinWards(const CsvTable& table, const ShapefileLayer& layer, const WardJoinOptions& options) {
  WardJoin join;
  const size_t rows = table.rowCount();
  const size_t shapes = layer.size();
  join.shape_of_row.assign(rows, std::nullopt);
  join.row_matched_by.assign(rows, JoinKey::kNone);
  join.row_of_shape.assign(shapes, std::nullopt);

  const CsvColumn* row_code = table.column(options.code_column);
  const CsvColumn* row_name = table.column(options.name_column);
  const CsvColumn* row_lga = table.column(options.lga_column);
  const auto shape_code = layer.fieldIndex(options.code_column);
  const auto shape_name = layer.fieldIndex(options.name_column);
  const auto shape_lga = layer.fieldIndex(options.lga_column);
  auto cell = [](const CsvColumn* column, size_t row) -> std::string_view {
    if (column == nullptr || column->isMissing(row)) return {};
    return trimAscii(column->cell(row));
  };
  auto field = [&](const std::optional<size_t>& index, size_t shape) -> std::string_view {
    return index ? std::string_view(layer.wards()[shape].attributes[*index]) : std::string_view();
  };

  std::vector<std::string> row_reason(rows);
  std::vector<std::string> shape_reason(shapes);

  if (row_code != nullptr && shape_code) {
    std::unordered_map<std::string, size_t> shape_by_code;
    for (size_t s = 0; s < shapes; ++s) {
      std::string code = normalizeCode(field(shape_code, s));
      if (code.empty()) continue;
      if (!shape_by_code.emplace(code, s).second)
        shape_reason[s] = "its WardCode appears twice in the shapefile";
    }
    for (size_t r = 0; r < rows; ++r) {
      std::string code = normalizeCode(cell(row_code, r));
      if (code.empty()) continue;
      auto it = shape_by_code.find(code);
      if (it == shape_by_code.end()) continue;
      if (join.row_of_shape[it->second]) {
        row_reason[r] = "its WardCode appears twice in the CSV";
        continue;
      }
      join.shape_of_row[r] = it->second;
      join.row_of_shape[it->second] = r;
      join.row_matched_by[r] = JoinKey::kWardCode;
      ++join.matched_by_code;
    }
  }

  if (row_name != nullptr && shape_name) {
    std::unordered_map<std::string, std::vector<size_t>> free_shapes_by_name;
    for (size_t s = 0; s < shapes; ++s) {
      if (join.row_of_shape[s] || !shape_reason[s].empty()) continue;
      std::string name = normalizeName(field(shape_name, s));
      if (!name.empty()) free_shapes_by_name[name].push_back(s);
    }
    const bool have_lga = row_lga != nullptr && shape_lga;
    for (size_t r = 0; r < rows; ++r) {
      if (join.shape_of_row[r] || !row_reason[r].empty()) continue;
      auto it = free_shapes_by_name.find(normalizeName(cell(row_name, r)));
      if (it == free_shapes_by_name.end()) continue;
      std::vector<size_t> candidates;
      for (size_t s : it->second) {
        if (!join.row_of_shape[s]) candidates.push_back(s);
      }
      if (candidates.size() > 1 && have_lga) {
        const std::string lga = normalizeName(cell(row_lga, r));
        std::erase_if(candidates, [&](size_t s) { return normalizeName(field(shape_lga, s)) != lga; });
      }
      if (candidates.size() == 1) {
        join.shape_of_row[r] = candidates.front();
        join.row_of_shape[candidates.front()] = r;
        join.row_matched_by[r] = JoinKey::kWardName;
        ++join.matched_by_name;
      } else if (candidates.size() > 1) {
        row_reason[r] = "its WardName matches " + std::to_string(candidates.size()) +
                        " wards in the shapefile; add WardCode to tell them apart";
      }
    }
  }

  std::vector<std::string> names(rows);
  std::vector<std::string> codes(rows);
  for (size_t r = 0; r < rows; ++r) {
    names[r] = std::string(cell(row_name, r));
    codes[r] = std::string(cell(row_code, r));
    if (codes[r].empty() && join.shape_of_row[r])
      codes[r] = std::string(field(shape_code, *join.shape_of_row[r]));
    if (!join.shape_of_row[r]) {
      join.unmatched_rows.push_back(
          {r, label(names[r], codes[r]),
           row_reason[r].empty() ? "no ward with its WardCode or WardName in the shapefile" : row_reason[r]});
    }
  }
  join.row_keys = displayKeys(names, codes);

  std::vector<std::string> shape_names(shapes);
  std::vector<std::string> shape_codes(shapes);
  for (size_t s = 0; s < shapes; ++s) {
    shape_names[s] = std::string(field(shape_name, s));
    shape_codes[s] = std::string(field(shape_code, s));
  }
  join.shape_keys = displayKeys(shape_names, shape_codes);
  for (size_t s = 0; s < shapes; ++s) {
    if (join.row_of_shape[s]) {
      join.shape_keys[s] = join.row_keys[*join.row_of_shape[s]];
    } else {
      join.unmatched_shapes.push_back(
          {s, label(shape_names[s], shape_codes[s]),
           shape_reason[s].empty() ? "no row with its WardCode or WardName in the CSV" : shape_reason[s]});
    }
  }
  return join;
}

picojson::object WardJoin::toJson(size_t max_listed) const {
  auto labels = [max_listed](const std::vector<UnmatchedWard>& wards) {
    picojson::array list;
    for (size_t i = 0; i < wards.size() && i < max_listed; ++i) list.emplace_back(wards[i].label);
    return picojson::value(std::move(list));
  };
  picojson::object out;
  out["matched_wards"] = picojson::value(static_cast<double>(matchedCount()));
  out["matched_by_code"] = picojson::value(static_cast<double>(matched_by_code));
  out["matched_by_name"] = picojson::value(static_cast<double>(matched_by_name));
  out["unmatched_csv_count"] = picojson::value(static_cast<double>(unmatched_rows.size()));
  out["unmatched_shapefile_count"] = picojson::value(static_cast<double>(unmatched_shapes.size()));
  out["unmatched_csv_wards"] = labels(unmatched_rows);
  out["unmatched_shapefile_wards"] = labels(unmatched_shapes);
  return out;
}

Adjacency computeAdjacency(const std::vector<WardShape>& shapes, double quantum) {
  size_t total_vertices = 0;
  for (const WardShape& shape : shapes) {
    for (const auto& ring : shape.rings) total_vertices += ring.size();
  }
  // Per distinct vertex, the wards using it as a linked list in one flat array (no allocation per
  // vertex): `heads` below gives each distinct vertex its newest entry.
  struct Entry {
    uint32_t ward;
    uint32_t next;
  };
  constexpr uint32_t kEnd = UINT32_MAX;
  std::vector<Entry> entries;
  entries.reserve(total_vertices);
  // Distinct vertices in an open-addressing table of indexes, at most half full: one short probe
  // per vertex and no allocation per vertex (a node-based map spent most of an upload's time in
  // malloc and pointer chasing). `heads[i]` is the newest entry of distinct vertex `keys[i]`.
  std::vector<VertexKey> keys;
  std::vector<uint32_t> heads;
  size_t capacity = 16;
  while (capacity < total_vertices * 2) capacity <<= 1;
  std::vector<uint32_t> table(capacity, kEnd);
  const size_t mask = capacity - 1;
  constexpr double kMaxKey = 9.0e18;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const auto ward = static_cast<uint32_t>(s);
    for (const auto& ring : shapes[s].rings) {
      for (const Point& point : ring) {
        const double kx = std::round(point.x / quantum);
        const double ky = std::round(point.y / quantum);
        if (!(std::fabs(kx) < kMaxKey && std::fabs(ky) < kMaxKey)) continue;
        const VertexKey key{static_cast<int64_t>(kx), static_cast<int64_t>(ky)};
        size_t at = VertexKeyHash{}(key) & mask;
        while (table[at] != kEnd && !(keys[table[at]] == key)) at = (at + 1) & mask;
        if (table[at] == kEnd) {
          table[at] = static_cast<uint32_t>(keys.size());
          keys.push_back(key);
          heads.push_back(kEnd);
        }
        uint32_t& head = heads[table[at]];
        // Wards are visited in order, so a repeat of this ward's vertex (a ring's closing point,
        // two rings touching) can only be the newest entry.
        if (head != kEnd && entries[head].ward == ward) continue;
        entries.push_back({ward, head});
        head = static_cast<uint32_t>(entries.size() - 1);
      }
    }
  }

  std::unordered_map<uint64_t, uint32_t> shared_vertices;  // (a << 32 | b), a < b
  std::vector<uint32_t> wards;
  for (const uint32_t first : heads) {
    if (entries[first].next == kEnd) continue;  // used by one ward only
    wards.clear();
    for (uint32_t at = first; at != kEnd; at = entries[at].next) wards.push_back(entries[at].ward);
    for (size_t i = 0; i < wards.size(); ++i) {
      for (size_t j = i + 1; j < wards.size(); ++j) {
        const uint64_t a = std::min(wards[i], wards[j]);
        const uint64_t b = std::max(wards[i], wards[j]);
        ++shared_vertices[a << 32 | b];
      }
    }
  }
  Adjacency adjacency(shapes.size());
  for (const auto& [pair, count] : shared_vertices) {
    if (count < 2) continue;
    const auto a = static_cast<size_t>(pair >> 32);
    const auto b = static_cast<size_t>(pair & 0xFFFFFFFFu);
    adjacency[a].push_back(b);
    adjacency[b].push_back(a);
  }
  for (auto& neighbours : adjacency) std::sort(neighbours.begin(), neighbours.end());
  return adjacency;
}

Adjacency rowAdjacency(const WardJoin& join, const Adjacency& shape_adjacency) {
  Adjacency rows(join.shape_of_row.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    if (!join.shape_of_row[r]) continue;
    for (size_t neighbour : shape_adjacency[*join.shape_of_row[r]]) {
      if (join.row_of_shape[neighbour]) rows[r].push_back(*join.row_of_shape[neighbour]);
    }
    std::sort(rows[r].begin(), rows[r].end());
  }
  return rows;
}

}  // namespace stickyproxy::backend
