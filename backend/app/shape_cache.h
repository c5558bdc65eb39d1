// Ward boundaries parsed once per distinct shapefile zip and shared by every upload of the same
// bytes: users of one state upload the same official boundaries again and again, and reading,
// joining up and projecting them is most of an upload's cost.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backend/data/shapefile_zip.h"
#include "backend/data/ward_join.h"
#include "backend/viz/ward_outlines.h"

namespace stickyproxy::backend {

// What a shapefile zip gives any upload of it, whatever CSV comes with it.
struct ParsedShapes {
  ShapefileLayer layer;  // records and attributes; its rings already dropped
  Adjacency adjacency;   // by shape record (computeAdjacency)
  std::shared_ptr<const WardOutlines> outlines;
};

// Process-wide and thread-safe: uploads are parsed on libuv's thread pool. An entry lives as
// long as some session still holds its outlines, so the cache never keeps boundaries nobody
// uses; sessions evicted by the memory budget let theirs go with them.
class ShapeCache {
 public:
  static ShapeCache& instance();

  // SHA-256 of the file at `path` as 64 hex digits; empty when it cannot be read. The key: two
  // zips with the same digest hold the same bytes.
  static std::string digestOf(const std::string& path);

  // A copy of what was parsed from a zip with `digest`, sharing its outlines; nullopt when no
  // upload holds them any more (or there never was one).
  std::optional<ParsedShapes> find(const std::string& digest);
  // Remembers `shapes` for `digest`, and forgets entries whose outlines nobody holds.
  void insert(const std::string& digest, const ParsedShapes& shapes);
  // Entries whose outlines some upload still holds.
  size_t liveEntries();

 private:
  struct Entry {
    ShapefileLayer layer;
    Adjacency adjacency;
    std::weak_ptr<const WardOutlines> outlines;
  };
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace stickyproxy::backend
