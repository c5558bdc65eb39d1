#include "proxy/routing/router.h"

namespace stickyproxy {

int64_t unixSeconds(WallTime time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

Router::Router(RingPtr ring, SessionTable* sessions, AvailabilityOf availability)
    : ring_(std::move(ring)), sessions_(sessions), availability_(std::move(availability)) {}

Availability Router::availabilityOf(const std::string& name) const {
  // A worker that left the ring (config reload) takes nothing: its sessions move on.
  if (!ring_->indexOf(name)) return Availability::kDown;
  return availability_(name);
}

std::string Router::ringOwner(uint64_t key_hash) const { return ring_->workerNames()[ring_->ownerOf(key_hash)]; }

std::string Router::nextReady(uint64_t key_hash) const {
  const auto& names = ring_->workerNames();
  for (Availability wanted : {Availability::kReady, Availability::kDraining, Availability::kEvicted}) {
    auto index = ring_->firstEligible(key_hash, [&](size_t candidate) { return availability_(names[candidate]) == wanted; });
    if (index) return names[*index];
  }
  return {};
}

RouteDecision Router::route(const RouteRequest& request, WallTime now) {
  RouteDecision decision;
  const uint64_t key_hash = request.key_hash;
  // Only a key this proxy signed is looked up or recorded: anything else is a client's choice.
  std::optional<SessionEntry> entry =
      request.fresh || !request.trusted ? std::nullopt : sessions_->find(key_hash);

  // Where the session lives, by the latest knowledge: a move the table knows of wins over the
  // cookie's pin unless the pin is newer (it was made elsewhere, or re-issued after the move).
  std::string home;
  std::string state_at;  // the worker holding the state when a move to `home` is unannounced
  std::optional<CookiePin> pin;
  if (entry && entry->moved && (!request.pin || unixSeconds(entry->moved_at) >= request.pin->since_s)) {
    home = entry->worker;
    pin = CookiePin{home, unixSeconds(entry->moved_at)};
    if (entry->announce_previous) state_at = entry->previous_worker;
  } else if (request.pin) {
    home = request.pin->worker;
    pin = request.pin;
  } else {
    home = ringOwner(key_hash);
  }

  bool stays = false;
  switch (availabilityOf(home)) {
    case Availability::kReady:
    case Availability::kPaused:
      stays = !(request.fresh && availabilityOf(home) == Availability::kPaused);
      break;
    case Availability::kDraining:
      // Only a session active on it stays: anything else would be a new session there.
      stays = entry && entry->worker == home && now - entry->last_seen <= sessions_->sessionIdle();
      break;
    case Availability::kEvicted:
    case Availability::kDown:
      break;
  }
  std::string target = stays ? home : nextReady(key_hash);
  if (target.empty()) return decision;
  decision.worker = target;
  decision.repinned = target != ringOwner(key_hash);

  if (target == home) {
    if (!request.fresh && request.trusted) {
      if (request.trusted && entry && entry->moved && entry->worker != home) {
        sessions_->pin(key_hash, home, now);  // the cookie knew of a later move than the table
        decision.table_changed = true;
        pin = CookiePin{home, unixSeconds(now)};
      } else {
        sessions_->touch(key_hash, home, now);
      }
    }
    decision.announce_previous = state_at;
    decision.cookie_pin = pin ? *pin : CookiePin{home, unixSeconds(now)};
    return decision;
  }

  decision.cookie_pin = CookiePin{target, unixSeconds(now)};
  if (request.fresh) return decision;  // nothing to adopt: no worker has seen it
  decision.moved_now = true;
  if (request.trusted) {
    sessions_->move(key_hash, home, target, now);
    decision.table_changed = true;
    std::optional<SessionEntry> moved = sessions_->find(key_hash);
    if (moved && moved->announce_previous) decision.announce_previous = moved->previous_worker;
  } else {
    // An unsigned key leaves no state behind; its cookie is re-issued signed with the new pin.
    std::string previous = state_at.empty() ? home : state_at;
    if (previous != target) decision.announce_previous = previous;
  }
  return decision;
}

size_t Router::replaceRing(RingPtr ring, WallTime now) {
  size_t pinned = 0;
  for (const std::string& worker : ring_->workerNames()) {
    if (!ring->indexOf(worker)) continue;  // a removed worker's sessions move on their next request
    for (uint64_t key_hash : sessions_->keysPinnedTo(worker)) {
      std::optional<SessionEntry> entry = sessions_->find(key_hash);
      if (!entry || entry->moved) continue;
      if (ring->workerNames()[ring->ownerOf(key_hash)] == worker) continue;
      sessions_->pin(key_hash, worker, now);
      ++pinned;
    }
  }
  ring_ = std::move(ring);
  return pinned;
}

size_t Router::repinSessionsOf(const std::string& worker, WallTime now) {
  size_t moved = 0;
  for (uint64_t key_hash : sessions_->keysPinnedTo(worker)) {
    std::string target = nextReady(key_hash);
    if (target.empty() || target == worker) continue;
    sessions_->move(key_hash, worker, target, now);
    ++moved;
  }
  return moved;
}

}  // namespace stickyproxy
