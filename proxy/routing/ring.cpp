#include "proxy/routing/ring.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "proxy/routing/stable_hash.h"

namespace stickyproxy {

namespace {

// The string hashed for virtual node `index` of `worker`: "w2#17". Fixed forever: changing it
// would remap every session on upgrade.
std::string virtualNodeKey(const std::string& worker, uint32_t index) {
  std::string key;
  key.reserve(worker.size() + 11);
  key.append(worker);
  key.push_back('#');
  key.append(std::to_string(index));
  return key;
}

}  // namespace

std::shared_ptr<const Ring> Ring::build(std::vector<std::string> worker_names,
                                        uint32_t virtual_nodes) {
  std::sort(worker_names.begin(), worker_names.end());
  worker_names.erase(std::unique(worker_names.begin(), worker_names.end()), worker_names.end());
  // Not make_shared: the constructor is private.
  return std::shared_ptr<const Ring>(new Ring(std::move(worker_names), virtual_nodes));
}

Ring::Ring(std::vector<std::string> worker_names, uint32_t virtual_nodes)
    : worker_names_(std::move(worker_names)), virtual_nodes_(virtual_nodes) {
  assert(worker_names_.size() <= std::numeric_limits<uint32_t>::max());
  points_.reserve(worker_names_.size() * virtual_nodes_);
  for (uint32_t worker = 0; worker < worker_names_.size(); ++worker) {
    for (uint32_t i = 0; i < virtual_nodes_; ++i) {
      points_.push_back({stableHash(virtualNodeKey(worker_names_[worker], i)), worker});
    }
  }
  // Worker indexes follow the sorted names, so breaking hash ties by index orders colliding
  // points by name: the same set of names always yields the same ring, and removing a worker
  // leaves the relative order of everyone else's points unchanged.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.worker < b.worker;
  });
}

size_t Ring::firstPointAtOrAfter(uint64_t hash) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                             [](const Point& point, uint64_t h) { return point.hash < h; });
  return it == points_.end() ? 0 : static_cast<size_t>(it - points_.begin());
}

size_t Ring::ownerOf(uint64_t hash) const {
  assert(!empty());
  return points_[firstPointAtOrAfter(hash)].worker;
}

std::optional<size_t> Ring::firstEligible(uint64_t hash,
                                          const std::function<bool(size_t)>& eligible) const {
  if (empty()) return std::nullopt;
  const size_t start = firstPointAtOrAfter(hash);
  const size_t first_worker = points_[start].worker;
  // The common case, the owner itself is eligible, needs no bookkeeping at all.
  if (eligible(first_worker)) return first_worker;
  if (worker_names_.size() == 1) return std::nullopt;

  // Why this equals "the owner on a ring without the ineligible workers": removing a worker
  // removes exactly its points and leaves every other point (and their tie order) in place, so
  // the first surviving point clockwise from `hash` is the first point we reach here whose
  // worker is eligible. Each worker is asked once; the walk ends when all have been asked,
  // which with random points takes far fewer than pointCount() steps.
  std::vector<bool> seen(worker_names_.size(), false);
  seen[first_worker] = true;
  size_t unseen = worker_names_.size() - 1;
  for (size_t step = 1; step < points_.size() && unseen > 0; ++step) {
    size_t pos = start + step;
    if (pos >= points_.size()) pos -= points_.size();
    const size_t worker = points_[pos].worker;
    if (seen[worker]) continue;
    seen[worker] = true;
    --unseen;
    if (eligible(worker)) return worker;
  }
  return std::nullopt;
}

std::optional<size_t> Ring::indexOf(std::string_view worker_name) const {
  auto it = std::lower_bound(worker_names_.begin(), worker_names_.end(), worker_name,
                             [](const std::string& name, std::string_view wanted) {
                               return std::string_view(name) < wanted;
                             });
  if (it == worker_names_.end() || *it != worker_name) return std::nullopt;
  return static_cast<size_t>(it - worker_names_.begin());
}

}  // namespace stickyproxy
