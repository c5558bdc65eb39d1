// Joining the uploaded CSV rows to the shapefile's wards, and which wards border which.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "backend/data/csv_table.h"
#include "backend/data/shapefile_zip.h"

namespace stickyproxy::backend {

struct WardJoinOptions {
  // Names of the CSV columns and of the DBF fields, both looked up case-insensitively.
  std::string code_column = "WardCode";
  std::string name_column = "WardName";
  std::string lga_column = "LGAName";
};

enum class JoinKey { kNone, kWardCode, kWardName };

// A CSV row or shape record that found no partner, and why.
struct UnmatchedWard {
  size_t index = 0;   // CSV data row (0-based) or shape record
  std::string label;  // "WardName (WardCode)", or whichever of the two exists
  std::string reason;
};

struct WardJoin {
  std::vector<std::optional<size_t>> shape_of_row;  // per CSV row: its shape record
  std::vector<JoinKey> row_matched_by;              // per CSV row
  std::vector<std::optional<size_t>> row_of_shape;  // per shape record: its CSV row
  // Per CSV row, the name to show: WardName, or "<WardCode>_<WardName>" when the name occurs more
  // than once in the CSV (the same ward name in two LGAs). Unique across rows.
  std::vector<std::string> row_keys;
  // Per shape record: the key of its row, or for unmatched shapes their own name (disambiguated
  // the same way among shapes).
  std::vector<std::string> shape_keys;
  size_t matched_by_code = 0;
  size_t matched_by_name = 0;
  std::vector<UnmatchedWard> unmatched_rows;
  std::vector<UnmatchedWard> unmatched_shapes;

  size_t matchedCount() const { return matched_by_code + matched_by_name; }

  // For the upload answer: {matched_wards, matched_by_code, matched_by_name, unmatched_csv_count,
  // unmatched_shapefile_count, unmatched_csv_wards, unmatched_shapefile_wards}, the two lists
  // holding at most `max_listed` labels each.
  picojson::object toJson(size_t max_listed = 50) const;
};

// Pairs CSV rows with shape records. A row is matched on WardCode when both sides have codes and
// the row's code names a shape; rows left over are matched on WardName (compared ignoring case,
// punctuation and spacing) when exactly one unmatched shape has that name, narrowed by LGAName
// when several do. A code or name used twice on one side matches once; the others are reported
// as unmatched with the reason. Never fails: the caller decides how many unmatched wards are
// acceptable.
WardJoin joinWards(const CsvTable& table, const ShapefileLayer& layer, const WardJoinOptions& options = {});

// Per ward, its neighbours' indexes, ascending.
using Adjacency = std::vector<std::vector<size_t>>;

// Wards are neighbours when their boundaries share at least two vertices (so a shared edge counts,
// a touching corner does not). Vertices are compared after rounding to multiples of `quantum`
// (in the layer's units): each distinct rounded vertex goes into a hash table with the wards that
// use it, so the cost is linear in the total vertex count plus the pairs meeting at each vertex.
// Boundaries whose shared edges are stored with different vertices (a T-junction) are not seen.
Adjacency computeAdjacency(const std::vector<WardShape>& shapes, double quantum = 1e-9);

// The shape adjacency carried over to CSV rows through `join`: rows whose shapes are neighbours.
// Rows without a shape have no neighbours.
Adjacency rowAdjacency(const WardJoin& join, const Adjacency& shape_adjacency);

}  // namespace stickyproxy::backend
