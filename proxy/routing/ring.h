// Consistent hashing of routing keys onto workers, over virtual nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stickyproxy {

// An immutable hash ring. Each worker owns `virtual_nodes` points on a 64-bit circle; a hash
// belongs to the worker of the first point at or after it (clockwise), wrapping past the top.
// Membership changes build a new Ring and swap the shared pointer, so readers never see a ring
// change under them. Immutable after build(), hence safe to read from any thread.
class Ring {
 public:
  // One point on the circle. `worker` indexes workerNames().
  struct Point {
    uint64_t hash;
    uint32_t worker;
  };

  // Builds an immutable ring. `worker_names` are sorted and de-duplicated first, so the ring
  // depends only on the set of names, not on their order. Each worker gets `virtual_nodes`
  // points at stableHash("<name>#<i>") for i in [0, virtual_nodes). Equal hash points
  // (collisions) are ordered by worker name so the result is deterministic.
  // With no workers or zero virtual nodes the ring is empty(): see ownerOf().
  static std::shared_ptr<const Ring> build(std::vector<std::string> worker_names,
                                           uint32_t virtual_nodes);

  // The workers, sorted and unique. Indexes returned by this class refer to this vector.
  const std::vector<std::string>& workerNames() const { return worker_names_; }

  // True when the ring has no points (no workers, or zero virtual nodes).
  bool empty() const { return points_.empty(); }

  // Index into workerNames() of the owner of `hash`: the first point >= hash, wrapping to the
  // first point. Requires !empty().
  size_t ownerOf(uint64_t hash) const;

  // Walks clockwise from `hash` (starting at the point ownerOf() would pick) and returns the
  // first worker index for which eligible(index) is true, calling `eligible` at most once per
  // worker; nullopt if none is eligible or the ring is empty.
  // Skipping ineligible workers this way gives exactly the owner a ring built without them
  // would give, so taking a worker out of rotation moves only that worker's keys.
  std::optional<size_t> firstEligible(uint64_t hash,
                                      const std::function<bool(size_t)>& eligible) const;

  // Index of `worker_name` in workerNames(), or nullopt if it is not on the ring.
  std::optional<size_t> indexOf(std::string_view worker_name) const;

  // Number of points: workers x virtual nodes.
  size_t pointCount() const { return points_.size(); }

  // Virtual nodes per worker this ring was built with.
  uint32_t virtualNodes() const { return virtual_nodes_; }

  // The points sorted by (hash, worker name). For tests and diagnostics.
  const std::vector<Point>& points() const { return points_; }

 private:
  Ring(std::vector<std::string> worker_names, uint32_t virtual_nodes);

  // Position in points_ of the first point >= hash, wrapped to 0 past the end. Requires !empty().
  size_t firstPointAtOrAfter(uint64_t hash) const;

  std::vector<std::string> worker_names_;
  uint32_t virtual_nodes_;
  std::vector<Point> points_;
};

using RingPtr = std::shared_ptr<const Ring>;

}  // namespace stickyproxy
