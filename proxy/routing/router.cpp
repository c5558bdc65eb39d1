#include "proxy/routing/router.h"

namespace stickyproxy {

int64_t unixSeconds(WallTime time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

Router::Router(RingPtr ring, SessionTable* sessions, AvailabilityOf availability)
    : sessions_(sessions), availability_(std::move(availability)) {
  setRing(std::move(ring));
}

void Router::setRing(RingPtr ring) {
  ring_ = std::move(ring);
  table_ids_.clear();
  for (const std::string& name : ring_->workerNames()) table_ids_.push_back(sessions_->workerId(name));
}

Availability Router::availabilityOf(std::optional<size_t> index) const {
  // A worker that left the ring (config reload) takes nothing: its sessions move on.
  if (!index) return Availability::kDown;
  return availability_(*index);
}

std::optional<size_t> Router::nextReady(uint64_t key_hash) const {
  for (Availability wanted : {Availability::kReady, Availability::kDraining, Availability::kEvicted}) {
    auto index = ring_->firstEligible(key_hash, [&](size_t candidate) { return availability_(candidate) == wanted; });
    if (index) return index;
  }
  return std::nullopt;
}

RouteDecision Router::route(const RouteRequest& request, WallTime now) {
  RouteDecision decision;
  const uint64_t key_hash = request.key_hash;
  const std::vector<std::string>& names = ring_->workerNames();
  // Only a key this proxy signed is looked up or recorded: anything else is a client's choice.
  std::optional<SessionEntry> entry =
      request.fresh || !request.trusted ? std::nullopt : sessions_->find(key_hash);
  // Where the ring puts the key, looked up once.
  const std::optional<size_t> owner = ring_->empty() ? std::nullopt : std::optional<size_t>(ring_->ownerOf(key_hash));

  // Where the session lives, by the latest knowledge: a move the table knows of wins over the
  // cookie's pin unless the pin is newer (it was made elsewhere, or re-issued after the move).
  std::string_view home;
  std::optional<size_t> home_index;
  std::string_view state_at;  // the worker holding the state when a move to `home` is unannounced
  std::optional<CookiePin> pin;
  if (entry && entry->moved && (!request.pin || unixSeconds(entry->moved_at) >= request.pin->since_s)) {
    home = entry->worker;
    home_index = ring_->indexOf(home);
    pin = CookiePin{entry->worker, unixSeconds(entry->moved_at)};
    if (entry->announce_previous) state_at = entry->previous_worker;
  } else if (request.pin) {
    home = request.pin->worker;
    home_index = ring_->indexOf(home);
    pin = request.pin;
  } else if (owner) {
    home_index = owner;
    home = names[*owner];
  }

  bool stays = false;
  const Availability home_availability = availabilityOf(home_index);
  switch (home_availability) {
    case Availability::kReady:
    case Availability::kPaused:
      stays = !(request.fresh && home_availability == Availability::kPaused);
      break;
    case Availability::kDraining:
      // Only a session active on it stays: anything else would be a new session there.
      stays = entry && entry->worker == home && now - entry->last_seen <= sessions_->sessionIdle();
      break;
    case Availability::kEvicted:
    case Availability::kDown:
      break;
  }
  const std::optional<size_t> target = stays ? home_index : nextReady(key_hash);
  if (!target) return decision;
  const std::string& target_name = names[*target];
  decision.worker = target_name;
  decision.worker_index = static_cast<uint32_t>(*target);
  decision.repinned = target != owner;

  if (target == home_index) {
    const std::string& home_name = target_name;
    if (!request.fresh && request.trusted) {
      if (request.trusted && entry && entry->moved && entry->worker != home_name) {
        sessions_->pin(key_hash, home_name, now);  // the cookie knew of a later move than the table
        decision.table_changed = true;
        pin = CookiePin{home_name, unixSeconds(now)};
      } else {
        sessions_->touch(key_hash, table_ids_[*target], now);
      }
    }
    decision.announce_previous = std::string(state_at);
    decision.cookie_pin = pin ? *pin : CookiePin{home_name, unixSeconds(now)};
    return decision;
  }

  decision.cookie_pin = CookiePin{target_name, unixSeconds(now)};
  if (request.fresh) return decision;  // nothing to adopt: no worker has seen it
  decision.moved_now = true;
  const std::string home_name(home);
  if (request.trusted) {
    sessions_->move(key_hash, home_name, target_name, now);
    decision.table_changed = true;
    std::optional<SessionEntry> moved = sessions_->find(key_hash);
    if (moved && moved->announce_previous) decision.announce_previous = moved->previous_worker;
  } else {
    // An unsigned key leaves no state behind; its cookie is re-issued signed with the new pin.
    std::string previous = state_at.empty() ? home_name : std::string(state_at);
    if (previous != target_name) decision.announce_previous = previous;
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
  setRing(std::move(ring));
  return pinned;
}

size_t Router::repinSessionsOf(const std::string& worker, WallTime now) {
  size_t moved = 0;
  for (uint64_t key_hash : sessions_->keysPinnedTo(worker)) {
    std::optional<size_t> target = nextReady(key_hash);
    if (!target || ring_->workerNames()[*target] == worker) continue;
    sessions_->move(key_hash, worker, ring_->workerNames()[*target], now);
    ++moved;
  }
  return moved;
}

}  // namespace stickyproxy
