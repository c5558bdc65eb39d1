#include "proxy/core/router.h"

#include <catch2/catch.hpp>

#include <set>

#include "proxy/routing/stable_hash.h"

using namespace stickyproxy;

namespace {

struct Fixture {
  std::set<std::string> down;
  SessionTable sessions{std::chrono::minutes(30), std::chrono::hours(24)};
  Router router{Ring::build({"w1", "w2", "w3", "w4"}, 1024), &sessions,
                [this](const std::string& name) { return down.count(name) == 0; }};
  WallTime now = WallTime(std::chrono::hours(1000000));
};

uint64_t keyHash(int i) { return stableHash("session-" + std::to_string(i)); }

}  // namespace

TEST_CASE("a key goes to its ring owner while that worker is ready", "[router]") {
  Fixture f;
  const Ring& ring = *f.router.ring();
  for (int i = 0; i < 1000; ++i) {
    RouteDecision decision = f.router.route(keyHash(i), f.now);
    CHECK(decision.worker == ring.workerNames()[ring.ownerOf(keyHash(i))]);
    CHECK_FALSE(decision.repinned);
    CHECK_FALSE(decision.pinned_now);
    CHECK(decision.announce_previous.empty());
  }
}

TEST_CASE("killed worker's sessions move, announce once, and stay moved after it returns", "[router]") {
  Fixture f;
  std::map<uint64_t, std::string> before;
  for (int i = 0; i < 2000; ++i) before[keyHash(i)] = f.router.route(keyHash(i), f.now).worker;

  f.down.insert("w2");
  size_t moved = f.router.repinSessionsOf("w2", f.now);
  size_t on_w2 = 0;
  for (auto& [hash, worker] : before) on_w2 += worker == "w2";
  CHECK(moved == on_w2);
  CHECK(on_w2 > 300);

  for (auto& [hash, worker] : before) {
    RouteDecision decision = f.router.route(hash, f.now);
    if (worker == "w2") {
      CHECK(decision.worker != "w2");
      CHECK(decision.repinned);
      CHECK(decision.announce_previous == "w2");
      f.sessions.markAnnounced(hash);
    } else {
      CHECK(decision.worker == worker);  // no key moves between surviving workers
      CHECK_FALSE(decision.repinned);
    }
  }

  f.down.clear();  // w2 is back
  for (auto& [hash, worker] : before) {
    RouteDecision decision = f.router.route(hash, f.now);
    if (worker == "w2") {
      CHECK(decision.worker != "w2");
      CHECK(decision.announce_previous.empty());
    } else {
      CHECK(decision.worker == worker);
    }
  }
  // New keys use the returned worker again.
  size_t new_on_w2 = 0;
  for (int i = 5000; i < 6000; ++i) new_on_w2 += f.router.route(keyHash(i), f.now).worker == "w2";
  CHECK(new_on_w2 > 150);
}

TEST_CASE("a key first seen while its worker is down moves lazily to the next ready worker", "[router]") {
  Fixture f;
  f.down.insert("w3");
  const Ring& ring = *f.router.ring();
  for (int i = 0; i < 500; ++i) {
    uint64_t hash = keyHash(i);
    RouteDecision decision = f.router.route(hash, f.now);
    std::string owner = ring.workerNames()[ring.ownerOf(hash)];
    if (owner == "w3") {
      CHECK(decision.worker != "w3");
      CHECK(decision.announce_previous == "w3");
      CHECK(decision.moved_now);
      CHECK(decision.pinned_now);
    } else {
      CHECK(decision.worker == owner);
      CHECK_FALSE(decision.pinned_now);
    }
  }
}

TEST_CASE("no ready worker gives an empty decision", "[router]") {
  Fixture f;
  f.down = {"w1", "w2", "w3", "w4"};
  CHECK(f.router.route(keyHash(1), f.now).worker.empty());
}

TEST_CASE("adding a worker on reload keeps live sessions where they are and gives it new keys", "[router]") {
  Fixture f;
  std::map<uint64_t, std::string> before;
  for (int i = 0; i < 2000; ++i) before[keyHash(i)] = f.router.route(keyHash(i), f.now).worker;
  RingPtr bigger = Ring::build({"w1", "w2", "w3", "w4", "w5"}, 1024);
  size_t pinned = f.router.replaceRing(bigger, f.now);
  size_t owned_by_w5 = 0;
  for (auto& [hash, worker] : before) owned_by_w5 += bigger->workerNames()[bigger->ownerOf(hash)] == "w5";
  CHECK(pinned == owned_by_w5);
  CHECK(pinned > 200);
  for (auto& [hash, worker] : before) {
    RouteDecision decision = f.router.route(hash, f.now);
    CHECK(decision.worker == worker);
    CHECK(decision.announce_previous.empty());
  }
  size_t new_on_w5 = 0;
  for (int i = 10000; i < 11000; ++i) new_on_w5 += f.router.route(keyHash(i), f.now).worker == "w5";
  CHECK(new_on_w5 > 120);
}

TEST_CASE("a fresh key whose ring owner is down is pinned where it starts, with nothing to announce", "[router]") {
  Fixture f;
  const Ring& ring = *f.router.ring();
  uint64_t hash = 0;
  for (int i = 0;; ++i) {
    if (ring.workerNames()[ring.ownerOf(keyHash(i))] == "w2") {
      hash = keyHash(i);
      break;
    }
  }
  f.down.insert("w2");
  RouteDecision first = f.router.route(hash, f.now, /*fresh_key=*/true);
  CHECK(first.worker != "w2");
  CHECK(first.announce_previous.empty());
  CHECK(first.pinned_now);  // the state file must learn it
  f.down.clear();  // w2 returns before the browser's second request
  RouteDecision second = f.router.route(hash, f.now);
  CHECK(second.worker == first.worker);
  CHECK(second.announce_previous.empty());
  CHECK(second.repinned);
  CHECK_FALSE(second.pinned_now);  // only its last_seen moved on
}

namespace {

// Four workers; `draining` ones are ready but take no new sessions.
struct DrainFixture {
  std::set<std::string> down;
  std::set<std::string> draining;
  SessionTable sessions{std::chrono::minutes(30), std::chrono::hours(24)};
  Router router{Ring::build({"w1", "w2", "w3", "w4"}, 1024), &sessions,
                [this](const std::string& name) { return down.count(name) == 0; },
                [this](const std::string& name) { return draining.count(name) == 0; }};
  WallTime now = WallTime(std::chrono::hours(1000000));

  std::string owner(uint64_t key_hash) const {
    const Ring& ring = *router.ring();
    return ring.workerNames()[ring.ownerOf(key_hash)];
  }
};

}  // namespace

TEST_CASE("a draining worker keeps its active sessions and gets no new ones", "[router][drain]") {
  DrainFixture f;
  std::map<uint64_t, std::string> before;
  for (int i = 0; i < 2000; ++i) before[keyHash(i)] = f.router.route(keyHash(i), f.now).worker;
  f.draining.insert("w2");

  WallTime later = f.now + std::chrono::minutes(5);
  for (auto& [hash, worker] : before) {
    RouteDecision decision = f.router.route(hash, later);
    CHECK(decision.worker == worker);  // active sessions stay, on w2 too
    CHECK(decision.announce_previous.empty());
  }
  size_t fresh_owned_by_w2 = 0;
  for (int i = 10000; i < 12000; ++i) {
    uint64_t hash = keyHash(i);
    RouteDecision decision = f.router.route(hash, later, /*fresh_key=*/i % 2 == 0);
    CHECK(decision.worker != "w2");
    CHECK(decision.announce_previous.empty());
    if (f.owner(hash) == "w2") {
      ++fresh_owned_by_w2;
      CHECK(decision.repinned);
      CHECK(decision.pinned_now);
      // Pinned where it started: stays there after w2 is ready again.
      f.draining.clear();
      CHECK(f.router.route(hash, later).worker == decision.worker);
      f.draining.insert("w2");
    } else {
      CHECK(decision.worker == f.owner(hash));  // keys of other workers do not move
      CHECK_FALSE(decision.pinned_now);
    }
  }
  CHECK(fresh_owned_by_w2 > 300);
}

TEST_CASE("a session idle past the window on a draining worker starts again elsewhere", "[router][drain]") {
  DrainFixture f;
  uint64_t hash = 0;
  for (int i = 0; f.owner(hash = keyHash(i)) != "w3"; ++i) {
  }
  CHECK(f.router.route(hash, f.now).worker == "w3");
  f.draining.insert("w3");
  CHECK(f.router.route(hash, f.now + std::chrono::minutes(29)).worker == "w3");
  RouteDecision decision = f.router.route(hash, f.now + std::chrono::minutes(29) + std::chrono::minutes(31));
  CHECK(decision.worker != "w3");
  CHECK(decision.announce_previous.empty());
  CHECK(decision.repinned);
}

TEST_CASE("a key moved to a draining worker but not yet announced keeps naming its state's worker",
          "[router][drain]") {
  DrainFixture f;
  uint64_t hash = 0;
  for (int i = 0; f.owner(hash = keyHash(i)) != "w1"; ++i) {
  }
  f.router.route(hash, f.now);
  f.sessions.move(hash, "w1", "w4", f.now);  // e.g. w1 died; not yet announced to w4
  f.draining.insert("w4");
  // Idle past the window, then w4 drains: the key must move on and still announce w1.
  RouteDecision decision = f.router.route(hash, f.now + std::chrono::hours(1));
  CHECK(decision.worker != "w4");
  if (decision.worker != "w1") CHECK(decision.announce_previous == "w1");
}

TEST_CASE("evicting a draining worker moves its sessions to workers that take new ones, announced",
          "[router][drain]") {
  DrainFixture f;
  std::vector<uint64_t> on_w2;
  for (int i = 0; i < 2000; ++i) {
    if (f.router.route(keyHash(i), f.now).worker == "w2") on_w2.push_back(keyHash(i));
  }
  f.draining.insert("w2");
  CHECK(f.router.repinSessionsOf("w2", f.now) == on_w2.size());
  for (uint64_t hash : on_w2) {
    RouteDecision decision = f.router.route(hash, f.now);
    CHECK(decision.worker != "w2");
    CHECK(decision.announce_previous == "w2");
  }
}

TEST_CASE("when only a draining worker is left it still takes new sessions rather than none", "[router][drain]") {
  DrainFixture f;
  f.down = {"w1", "w3", "w4"};
  f.draining.insert("w2");
  for (int i = 0; i < 50; ++i) CHECK(f.router.route(keyHash(i), f.now, true).worker == "w2");
}
