#include "proxy/routing/ring.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "proxy/routing/stable_hash.h"

namespace stickyproxy {
namespace {

constexpr size_t kKeyCount = 100000;
constexpr uint32_t kDefaultVirtualNodes = 256;
// The smallest power of two at which 4 workers reliably land within 25% +- 2.5%: a worker's
// share of 4v random points has a standard deviation of sqrt(p(1-p)/(4v+1)), 1.35% at v = 256
// (so about one worker set in five misses +-2.5%, w1..w4 among them) and 0.68% at v = 1024,
// where +-2.5% is 3.7 standard deviations.
constexpr uint32_t kBalancedVirtualNodes = 1024;

// Keys shaped like newSessionKey()'s (32 lowercase hex chars), from a seeded generator so every
// run sees the same keys.
std::vector<uint64_t> keyHashes(uint64_t seed, size_t count = kKeyCount) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> hashes;
  hashes.reserve(count);
  std::string key(32, '0');
  for (size_t i = 0; i < count; ++i) {
    for (size_t half = 0; half < 2; ++half) {
      uint64_t bits = rng();
      for (size_t j = 0; j < 16; ++j) {
        key[half * 16 + j] = kHex[bits & 0x0f];
        bits >>= 4;
      }
    }
    hashes.push_back(stableHash(key));
  }
  return hashes;
}

const std::string& ownerName(const Ring& ring, uint64_t hash) {
  return ring.workerNames()[ring.ownerOf(hash)];
}

std::vector<std::string> fourWorkers() { return {"w1", "w2", "w3", "w4"}; }

TEST_CASE("ring golden values for w1..w4 at 256 virtual nodes stay pinned", "[routing]") {
  // Computed once and pinned: if these change, every deployed session would be remapped.
  const RingPtr ring = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  REQUIRE(ring->pointCount() == 4 * 256);
  const auto& points = ring->points();
  CHECK(points.front().hash == 0x00BED263B0157879ull);
  CHECK(points.back().hash == 0xFFB534A0BC9D5B89ull);

  SECTION("hash 0 belongs to the first point's worker") { CHECK(ownerName(*ring, 0) == "w4"); }
  SECTION("UINT64_MAX lies past the last point and wraps to the first") {
    CHECK(ownerName(*ring, std::numeric_limits<uint64_t>::max()) == "w4");
    CHECK(ownerName(*ring, points.back().hash + 1) == "w4");
  }
  SECTION("an exact ring point belongs to that point's worker, point + 1 to the next") {
    const uint64_t point = 0x203175C76D12E140ull;
    REQUIRE(points[100].hash == point);
    CHECK(ownerName(*ring, point - 1) == "w1");
    CHECK(ownerName(*ring, point) == "w1");
    CHECK(ownerName(*ring, point + 1) == "w4");
    CHECK(points[101].hash == 0x2032673CB81682A6ull);
  }
  SECTION("the last point belongs to its own worker") {
    CHECK(ownerName(*ring, points.back().hash) == "w2");
  }
}

TEST_CASE("ring points are the workers' '<name>#<i>' hashes in sorted order", "[routing]") {
  const RingPtr ring = Ring::build({"w2", "w1"}, 8);
  REQUIRE(ring->workerNames() == std::vector<std::string>{"w1", "w2"});
  REQUIRE(ring->virtualNodes() == 8);
  const auto& points = ring->points();
  REQUIRE(points.size() == 16);
  CHECK(std::is_sorted(points.begin(), points.end(), [](const auto& a, const auto& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.worker < b.worker;
  }));
  for (uint32_t i = 0; i < 8; ++i) {
    for (uint32_t worker = 0; worker < 2; ++worker) {
      const uint64_t hash = stableHash(ring->workerNames()[worker] + "#" + std::to_string(i));
      CHECK(std::any_of(points.begin(), points.end(), [&](const Ring::Point& point) {
        return point.hash == hash && point.worker == worker;
      }));
    }
  }
}

TEST_CASE("ring ignores the order and repetition of worker names", "[routing]") {
  const RingPtr sorted = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  const RingPtr shuffled = Ring::build({"w3", "w1", "w4", "w2", "w3", "w1"}, kDefaultVirtualNodes);
  CHECK(shuffled->workerNames() == sorted->workerNames());
  REQUIRE(shuffled->pointCount() == sorted->pointCount());
  for (size_t i = 0; i < sorted->pointCount(); ++i) {
    CHECK(shuffled->points()[i].hash == sorted->points()[i].hash);
    CHECK(shuffled->points()[i].worker == sorted->points()[i].worker);
  }
}

TEST_CASE("two independently built rings map 100k keys identically", "[routing]") {
  const RingPtr a = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  const RingPtr b = Ring::build({"w4", "w3", "w2", "w1"}, kDefaultVirtualNodes);
  size_t disagreements = 0;
  for (uint64_t hash : keyHashes(1)) {
    if (ownerName(*a, hash) != ownerName(*b, hash)) ++disagreements;
  }
  CHECK(disagreements == 0);
}

TEST_CASE("four workers each own 25% +- 2.5% of 100k keys at the balanced vnode count",
          "[routing]") {
  const std::vector<std::vector<std::string>> worker_sets = {
      fourWorkers(),
      {"app-a", "app-b", "app-c", "app-d"},
      {"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"},
      {"unix:/run/w1.sock", "unix:/run/w2.sock", "unix:/run/w3.sock", "unix:/run/w4.sock"},
  };
  const std::vector<uint64_t> hashes = keyHashes(2);
  for (const auto& names : worker_sets) {
    const RingPtr ring = Ring::build(names, kBalancedVirtualNodes);
    std::array<size_t, 4> counts{};
    for (uint64_t hash : hashes) ++counts[ring->ownerOf(hash)];
    for (size_t worker = 0; worker < counts.size(); ++worker) {
      INFO(ring->workerNames()[worker] << " owns " << counts[worker] << " of " << hashes.size());
      const double share = static_cast<double>(counts[worker]) / static_cast<double>(hashes.size());
      CHECK(share == Approx(0.25).margin(0.025));
    }
  }
}

TEST_CASE("at the default 256 virtual nodes four workers stay within 25% +- 5%", "[routing]") {
  // Looser than the balanced count: w2 owns 27.8% of this ring.
  const RingPtr ring = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  std::array<size_t, 4> counts{};
  const std::vector<uint64_t> hashes = keyHashes(2);
  for (uint64_t hash : hashes) ++counts[ring->ownerOf(hash)];
  for (size_t count : counts) {
    CHECK(static_cast<double>(count) / static_cast<double>(hashes.size()) ==
          Approx(0.25).margin(0.05));
  }
}

TEST_CASE("removing one of four workers moves only its keys, about a quarter", "[routing]") {
  const uint32_t virtual_nodes = GENERATE(kDefaultVirtualNodes, kBalancedVirtualNodes);
  const RingPtr full = Ring::build(fourWorkers(), virtual_nodes);
  const std::vector<uint64_t> hashes = keyHashes(3);
  for (const std::string& removed : fourWorkers()) {
    std::vector<std::string> survivors = fourWorkers();
    survivors.erase(std::find(survivors.begin(), survivors.end(), removed));
    const RingPtr reduced = Ring::build(survivors, virtual_nodes);
    size_t moved = 0;
    size_t moved_between_survivors = 0;
    for (uint64_t hash : hashes) {
      const std::string& before = ownerName(*full, hash);
      const std::string& after = ownerName(*reduced, hash);
      if (before == after) continue;
      ++moved;
      if (before != removed) ++moved_between_survivors;
    }
    INFO("virtual nodes " << virtual_nodes << ", removed " << removed << ", moved " << moved);
    CHECK(moved_between_survivors == 0);
    const double share = static_cast<double>(moved) / static_cast<double>(hashes.size());
    CHECK(share == Approx(0.25).margin(virtual_nodes >= kBalancedVirtualNodes ? 0.025 : 0.05));
  }
}

TEST_CASE("skipping an ineligible worker gives exactly the ring built without it", "[routing]") {
  // The claim behind marking a dead worker ineligible instead of rebuilding the ring: its
  // points are the only ones that disappear, so the first eligible point clockwise is the
  // first point of the smaller ring.
  const uint32_t virtual_nodes = GENERATE(16u, kDefaultVirtualNodes);
  const RingPtr full = Ring::build(fourWorkers(), virtual_nodes);
  const std::vector<uint64_t> hashes = keyHashes(4);
  for (const std::string& removed : fourWorkers()) {
    std::vector<std::string> survivors = fourWorkers();
    survivors.erase(std::find(survivors.begin(), survivors.end(), removed));
    const RingPtr reduced = Ring::build(survivors, virtual_nodes);
    const size_t removed_index = *full->indexOf(removed);
    size_t mismatches = 0;
    for (uint64_t hash : hashes) {
      const auto eligible = full->firstEligible(hash, [&](size_t w) { return w != removed_index; });
      if (!eligible || full->workerNames()[*eligible] != ownerName(*reduced, hash)) ++mismatches;
    }
    INFO("virtual nodes " << virtual_nodes << ", removed " << removed);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("skipping two ineligible workers gives exactly the ring of the other two",
          "[routing]") {
  const RingPtr full = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  const RingPtr reduced = Ring::build({"w1", "w3"}, kDefaultVirtualNodes);
  const size_t w2 = *full->indexOf("w2");
  const size_t w4 = *full->indexOf("w4");
  size_t mismatches = 0;
  for (uint64_t hash : keyHashes(5)) {
    const auto eligible =
        full->firstEligible(hash, [&](size_t w) { return w != w2 && w != w4; });
    if (!eligible || full->workerNames()[*eligible] != ownerName(*reduced, hash)) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("adding a fifth worker moves keys only to the new worker", "[routing]") {
  const RingPtr four = Ring::build(fourWorkers(), kBalancedVirtualNodes);
  const RingPtr five = Ring::build({"w1", "w2", "w3", "w4", "w5"}, kBalancedVirtualNodes);
  const std::vector<uint64_t> hashes = keyHashes(6);
  size_t moved = 0;
  size_t moved_elsewhere = 0;
  for (uint64_t hash : hashes) {
    const std::string& before = ownerName(*four, hash);
    const std::string& after = ownerName(*five, hash);
    if (before == after) continue;
    ++moved;
    if (after != "w5") ++moved_elsewhere;
  }
  CHECK(moved_elsewhere == 0);
  CHECK(static_cast<double>(moved) / static_cast<double>(hashes.size()) ==
        Approx(0.20).margin(0.025));
}

TEST_CASE("firstEligible returns the owner when it is eligible", "[routing]") {
  const RingPtr ring = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  for (uint64_t hash : keyHashes(7, 1000)) {
    CHECK(ring->firstEligible(hash, [](size_t) { return true; }) == ring->ownerOf(hash));
  }
}

TEST_CASE("firstEligible asks each worker once and gives up when none is eligible",
          "[routing]") {
  const RingPtr ring = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  for (uint64_t hash : {uint64_t{0}, ring->points()[17].hash, ~uint64_t{0}}) {
    std::vector<int> asked(4, 0);
    const auto result = ring->firstEligible(hash, [&](size_t w) {
      ++asked[w];
      return false;
    });
    CHECK_FALSE(result.has_value());
    CHECK(asked == std::vector<int>{1, 1, 1, 1});
  }
}

TEST_CASE("firstEligible finds the only eligible worker wherever it starts", "[routing]") {
  const RingPtr ring = Ring::build(fourWorkers(), kDefaultVirtualNodes);
  const size_t w3 = *ring->indexOf("w3");
  for (uint64_t hash : keyHashes(8, 1000)) {
    CHECK(ring->firstEligible(hash, [&](size_t w) { return w == w3; }) == w3);
  }
}

TEST_CASE("a single-worker ring owns everything unless that worker is ineligible",
          "[routing]") {
  const RingPtr ring = Ring::build({"solo"}, 4);
  CHECK(ring->ownerOf(0) == 0);
  CHECK(ring->ownerOf(~uint64_t{0}) == 0);
  CHECK(ring->firstEligible(12345, [](size_t) { return true; }) == 0u);
  CHECK_FALSE(ring->firstEligible(12345, [](size_t) { return false; }).has_value());
}

TEST_CASE("an empty ring has no points and no eligible worker", "[routing]") {
  const RingPtr no_workers = Ring::build({}, kDefaultVirtualNodes);
  const RingPtr no_nodes = Ring::build(fourWorkers(), 0);
  for (const RingPtr& ring : {no_workers, no_nodes}) {
    CHECK(ring->empty());
    CHECK(ring->pointCount() == 0);
    CHECK_FALSE(ring->firstEligible(0, [](size_t) { return true; }).has_value());
  }
}

TEST_CASE("indexOf finds workers by exact name", "[routing]") {
  const RingPtr ring = Ring::build({"w10", "w2", "w1"}, 4);
  CHECK(ring->workerNames() == std::vector<std::string>{"w1", "w10", "w2"});
  CHECK(ring->indexOf("w1") == 0u);
  CHECK(ring->indexOf("w10") == 1u);
  CHECK(ring->indexOf("w2") == 2u);
  CHECK_FALSE(ring->indexOf("w").has_value());
  CHECK_FALSE(ring->indexOf("w3").has_value());
  CHECK_FALSE(ring->indexOf("").has_value());
}

}  // namespace
}  // namespace stickyproxy
