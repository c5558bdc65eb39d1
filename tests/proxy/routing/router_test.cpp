#include "proxy/routing/router.h"

#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "proxy/routing/stable_hash.h"

using namespace stickyproxy;

namespace {

// Four workers whose availability a test sets by name.
struct Fixture {
  std::set<std::string> down;
  std::set<std::string> draining;
  std::set<std::string> evicted;
  SessionTable sessions{std::chrono::minutes(30), std::chrono::hours(24), 100000};
  Router router{Ring::build({"w1", "w2", "w3", "w4"}, 1024), &sessions, [this](size_t index) {
                  const std::string& name = router.ring()->workerNames()[index];
                  if (down.count(name)) return Availability::kDown;
                  if (evicted.count(name)) return Availability::kEvicted;
                  return draining.count(name) ? Availability::kDraining : Availability::kReady;
                }};
  WallTime now = WallTime(std::chrono::hours(1000000));

  std::string owner(uint64_t key_hash) const {
    const Ring& ring = *router.ring();
    return ring.workerNames()[ring.ownerOf(key_hash)];
  }
};

uint64_t keyHash(int i) { return stableHash("session-" + std::to_string(i)); }

// A browser: keeps the cookie pin the proxy gives it, as a real one keeps its cookie.
struct Browser {
  uint64_t key_hash;
  std::optional<CookiePin> pin;
  bool has_cookie = false;

  RouteDecision request(Fixture& f, WallTime at) {
    RouteRequest request;
    request.key_hash = key_hash;
    request.fresh = !has_cookie;
    request.pin = pin;
    RouteDecision decision = f.router.route(request, at);
    // Every decision names its worker by index in the ring too, the way the proxy reads it.
    if (decision.worker.empty()) {
      CHECK_FALSE(decision.worker_index);
    } else {
      REQUIRE(decision.worker_index);
      CHECK(f.router.ring()->workerNames()[*decision.worker_index] == decision.worker);
    }
    if (decision.cookie_pin) {
      pin = decision.cookie_pin;
      has_cookie = true;
    }
    if (!decision.announce_previous.empty()) f.sessions.markAnnounced(key_hash);  // the worker answered
    return decision;
  }
};

// `count` browsers that made their first request at f.now.
std::vector<Browser> browsers(Fixture& f, int count, int first = 0) {
  std::vector<Browser> out;
  for (int i = first; i < first + count; ++i) {
    Browser browser{keyHash(i), std::nullopt, false};
    browser.request(f, f.now);
    out.push_back(browser);
  }
  return out;
}

// Every one of `users` asks again at `at` and must reach the worker its cookie names, unannounced.
void expectNobodyMoves(Fixture& f, std::vector<Browser>& users, WallTime at) {
  for (Browser& user : users) {
    std::string before = user.pin->worker;
    RouteDecision decision = user.request(f, at);
    CHECK(decision.worker == before);
    CHECK(decision.announce_previous.empty());
  }
}

// The first key (from `start`) whose ring owner is `worker`.
uint64_t keyOwnedBy(const Fixture& f, const std::string& worker, int start = 0) {
  for (int i = start;; ++i) {
    if (f.owner(keyHash(i)) == worker) return keyHash(i);
  }
}

}  // namespace

TEST_CASE("a new session goes to its ring owner and its cookie is pinned there", "[router]") {
  Fixture f;
  for (int i = 0; i < 1000; ++i) {
    Browser browser{keyHash(i), std::nullopt, false};
    RouteDecision decision = browser.request(f, f.now);
    CHECK(decision.worker == f.owner(keyHash(i)));
    REQUIRE(decision.cookie_pin);
    CHECK(decision.cookie_pin->worker == decision.worker);
    CHECK_FALSE(decision.repinned);
    CHECK_FALSE(decision.table_changed);
    CHECK(decision.announce_previous.empty());
  }
  CHECK(f.sessions.size() == 0);  // a fresh key leaves nothing behind until it comes back
}

TEST_CASE("a killed worker's sessions move on their next request, announced once, and stay after it returns",
          "[router]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 2000);
  for (Browser& user : users) user.request(f, f.now);  // known sessions now
  f.down.insert("w2");
  size_t on_w2 = 0;
  for (Browser& user : users) {
    std::string before = user.pin->worker;
    RouteDecision decision = user.request(f, f.now + std::chrono::seconds(1));
    if (before == "w2") {
      ++on_w2;
      CHECK(decision.worker != "w2");
      CHECK(decision.moved_now);
      CHECK(decision.announce_previous == "w2");
      CHECK(decision.cookie_pin->worker == decision.worker);
    } else {
      CHECK(decision.worker == before);  // no session moves between surviving workers
      CHECK_FALSE(decision.moved_now);
    }
  }
  CHECK(on_w2 > 300);
  f.down.clear();  // w2 is back: moved sessions stay, and say nothing more
  expectNobodyMoves(f, users, f.now + std::chrono::seconds(2));
  // New sessions use the returned worker again.
  size_t new_on_w2 = 0;
  for (Browser& user : browsers(f, 1000, 5000)) new_on_w2 += user.pin->worker == "w2";
  CHECK(new_on_w2 > 150);
}

TEST_CASE("a session that made no request while its worker was down stays with it", "[router]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w3"), std::nullopt, false};
  user.request(f, f.now);
  f.down.insert("w3");
  f.down.clear();
  RouteDecision decision = user.request(f, f.now + std::chrono::seconds(5));
  CHECK(decision.worker == "w3");
  CHECK(decision.announce_previous.empty());
}

TEST_CASE("a move is announced for a session the table has forgotten, from its cookie's pin", "[router]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w1"), CookiePin{"w4", 1000}, true};  // pinned to w4 by another instance
  f.down.insert("w4");
  RouteDecision decision = user.request(f, f.now);
  CHECK(decision.worker != "w4");
  CHECK(decision.announce_previous == "w4");
  CHECK(decision.cookie_pin->worker == decision.worker);
}

TEST_CASE("an unsigned key is routed by the ring, its move names its ring owner, and it leaves no state", "[router]") {
  Fixture f;
  uint64_t hash = keyOwnedBy(f, "w2");
  f.down.insert("w2");
  RouteRequest request;
  request.key_hash = hash;
  request.trusted = false;
  RouteDecision decision = f.router.route(request, f.now);
  CHECK(decision.worker != "w2");
  CHECK(decision.announce_previous == "w2");
  CHECK(decision.cookie_pin->worker == decision.worker);  // re-issued signed, with its pin
  request.key_hash = keyOwnedBy(f, "w1");
  CHECK(f.router.route(request, f.now).worker == "w1");
  CHECK(f.sessions.size() == 0);  // neither the move nor the visit is remembered
}

TEST_CASE("a fresh key whose ring owner is down is pinned where it starts, with nothing to announce or keep",
          "[router]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w2"), std::nullopt, false};
  f.down.insert("w2");
  RouteDecision first = user.request(f, f.now);
  CHECK(first.worker != "w2");
  CHECK(first.announce_previous.empty());
  CHECK(first.repinned);
  CHECK(f.sessions.size() == 0);
  f.down.clear();  // w2 returns before the browser's second request: the cookie keeps it
  RouteDecision second = user.request(f, f.now + std::chrono::seconds(1));
  CHECK(second.worker == first.worker);
  CHECK(second.announce_previous.empty());
}

TEST_CASE("a move the table knows of beats an older cookie pin, and a newer pin beats the table", "[router]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w1"), std::nullopt, false};
  user.request(f, f.now);
  Browser old_tab = user;  // a request still carrying the cookie from before the move
  f.down.insert("w1");
  RouteDecision moved = user.request(f, f.now + std::chrono::seconds(10));
  f.down.clear();
  RouteDecision stale = old_tab.request(f, f.now + std::chrono::seconds(11));
  CHECK(stale.worker == moved.worker);
  CHECK(stale.announce_previous.empty());  // already announced by the move
  CHECK(stale.cookie_pin == moved.cookie_pin);

  // Another instance moved it later (to w3, say): its newer pin wins over this table.
  Browser elsewhere{user.key_hash, CookiePin{"w3", unixSeconds(f.now) + 100}, true};
  if (moved.worker != "w3") {
    RouteDecision decision = elsewhere.request(f, f.now + std::chrono::seconds(101));
    CHECK(decision.worker == "w3");
  }
}

TEST_CASE("a move to a worker that died before the session's next request still names the first worker",
          "[router]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w1"), std::nullopt, false};
  user.request(f, f.now);
  user.request(f, f.now);
  f.down.insert("w1");
  RouteRequest request{user.key_hash, false, true, user.pin};
  RouteDecision first = f.router.route(request, f.now + std::chrono::seconds(1));  // its answer is lost
  REQUIRE(first.announce_previous == "w1");
  f.down.insert(first.worker);
  RouteDecision second = f.router.route(request, f.now + std::chrono::seconds(2));
  CHECK(second.worker != first.worker);
  CHECK(second.announce_previous == "w1");  // the files are still there
}

TEST_CASE("no worker up gives an empty decision", "[router]") {
  Fixture f;
  f.down = {"w1", "w2", "w3", "w4"};
  RouteRequest request;
  request.key_hash = keyHash(1);
  RouteDecision decision = f.router.route(request, f.now);
  CHECK(decision.worker.empty());
  CHECK_FALSE(decision.worker_index);
  CHECK_FALSE(decision.cookie_pin);
}

TEST_CASE("adding a worker on reload moves no session and gives it new ones", "[router]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 2000);
  for (Browser& user : users) user.request(f, f.now);
  RingPtr bigger = Ring::build({"w1", "w2", "w3", "w4", "w5"}, 1024);
  f.router.replaceRing(bigger, f.now);
  expectNobodyMoves(f, users, f.now + std::chrono::seconds(1));
  size_t new_on_w5 = 0;
  for (Browser& user : browsers(f, 1000, 10000)) new_on_w5 += user.pin->worker == "w5";
  CHECK(new_on_w5 > 120);
}

TEST_CASE("removing a worker on reload moves its sessions, announced", "[router]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 500);
  f.router.replaceRing(Ring::build({"w1", "w2", "w3"}, 1024), f.now);
  for (Browser& user : users) {
    std::string before = user.pin->worker;
    RouteDecision decision = user.request(f, f.now + std::chrono::seconds(1));
    if (before == "w4") {
      CHECK(decision.worker != "w4");
      CHECK(decision.announce_previous == "w4");
    } else {
      CHECK(decision.worker == before);
    }
  }
}

TEST_CASE("a draining worker keeps its active sessions and gets no new ones", "[router][drain]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 2000);
  for (Browser& user : users) user.request(f, f.now);
  f.draining.insert("w2");
  WallTime later = f.now + std::chrono::minutes(5);
  expectNobodyMoves(f, users, later);  // active sessions stay, on w2 too
  size_t fresh_owned_by_w2 = 0;
  for (int i = 10000; i < 12000; ++i) {
    Browser user{keyHash(i), std::nullopt, false};
    RouteDecision decision = user.request(f, later);
    CHECK(decision.worker != "w2");
    CHECK(decision.announce_previous.empty());
    if (f.owner(keyHash(i)) == "w2") ++fresh_owned_by_w2;
  }
  CHECK(fresh_owned_by_w2 > 300);
}

TEST_CASE("a session idle past the window on a draining worker moves, announced so its files follow",
          "[router][drain]") {
  Fixture f;
  Browser user{keyOwnedBy(f, "w3"), std::nullopt, false};
  user.request(f, f.now);
  user.request(f, f.now);
  f.draining.insert("w3");
  CHECK(user.request(f, f.now + std::chrono::minutes(29)).worker == "w3");
  RouteDecision decision = user.request(f, f.now + std::chrono::minutes(29) + std::chrono::minutes(31));
  CHECK(decision.worker != "w3");
  CHECK(decision.announce_previous == "w3");
  CHECK(decision.moved_now);
}

TEST_CASE("an evicted worker's sessions leave at once, announced, even when active", "[router][drain]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 1000);
  for (Browser& user : users) user.request(f, f.now);
  f.draining.insert("w2");
  f.evicted.insert("w2");
  for (Browser& user : users) {
    std::string before = user.pin->worker;
    RouteDecision decision = user.request(f, f.now + std::chrono::seconds(1));
    if (before == "w2") {
      CHECK(decision.worker != "w2");
      CHECK(decision.announce_previous == "w2");
    } else {
      CHECK(decision.worker == before);
    }
  }
}

TEST_CASE("repinSessionsOf moves the table's sessions of a worker now, announced on their next request",
          "[router][drain]") {
  Fixture f;
  std::vector<Browser> users = browsers(f, 2000);
  size_t on_w2 = 0;
  for (Browser& user : users) {
    user.request(f, f.now);
    on_w2 += user.pin->worker == "w2";
  }
  f.draining.insert("w2");
  f.evicted.insert("w2");
  CHECK(f.router.repinSessionsOf("w2", f.now) == on_w2);
  f.evicted.clear();
  f.draining.clear();  // back in rotation: the moved sessions stay moved
  for (Browser& user : users) {
    std::string before = user.pin->worker;
    RouteDecision decision = user.request(f, f.now + std::chrono::seconds(1));
    if (before == "w2") {
      CHECK(decision.worker != "w2");
      CHECK(decision.announce_previous == "w2");
    }
  }
}

TEST_CASE("when only a draining or evicted worker is left it still takes sessions rather than none",
          "[router][drain]") {
  Fixture f;
  f.down = {"w1", "w3", "w4"};
  f.draining.insert("w2");
  for (int i = 0; i < 50; ++i) CHECK(Browser{keyHash(i), std::nullopt, false}.request(f, f.now).worker == "w2");
  f.evicted.insert("w2");
  for (int i = 0; i < 50; ++i) CHECK(Browser{keyHash(i), std::nullopt, false}.request(f, f.now).worker == "w2");
}
