#include "proxy/core/router.h"

namespace stickyproxy {

namespace {
// Ceiling on tracked sessions: each costs about 120 bytes, and clients choose their keys (or
// come without one). Beyond it new sessions still route (by the ring, or past a draining or
// down owner), but are not counted and not pinned: should their worker die and return, or a
// drain end, they follow the ring again. Sessions already tracked are always moved and kept.
constexpr size_t kMaxTrackedSessions = 500'000;
}  // namespace

Router::Router(RingPtr ring, SessionTable* sessions, ReadyPredicate is_ready, ReadyPredicate takes_new)
    : ring_(std::move(ring)),
      sessions_(sessions),
      is_ready_(std::move(is_ready)),
      takes_new_(takes_new ? std::move(takes_new) : is_ready_) {}

std::string Router::nextReady(uint64_t key_hash) const {
  const auto& names = ring_->workerNames();
  auto index = ring_->firstEligible(key_hash, [&](size_t candidate) {
    return is_ready_(names[candidate]) && takes_new_(names[candidate]);
  });
  if (!index) index = ring_->firstEligible(key_hash, [&](size_t candidate) { return is_ready_(names[candidate]); });
  return index ? names[*index] : std::string();
}

RouteDecision Router::route(uint64_t key_hash, WallTime now, bool fresh_key) {
  RouteDecision decision;
  const SessionEntry* entry = sessions_->find(key_hash);
  std::string pinned = entry != nullptr && entry->moved ? entry->worker
                                                        : ring_->workerNames()[ring_->ownerOf(key_hash)];
  // A moved key whose worker has left the ring (config reload) moves on like any other key
  // whose worker cannot take it.
  bool pinned_usable = ring_->indexOf(pinned).has_value() && is_ready_(pinned);
  if (pinned_usable && !takes_new_(pinned)) {
    // Draining: only a session active on it stays. Anything else (a fresh key, one the table
    // has forgotten, one idle past the window) would be a new session there.
    const bool active_here = entry != nullptr && entry->worker == pinned &&
                             now - entry->last_seen <= sessions_->sessionIdle();
    if (!active_here) {
      std::string target = nextReady(key_hash);
      if (!target.empty() && target != pinned) {
        if (entry != nullptr && entry->moved && entry->announce_previous) {
          // Its move to `pinned` was never announced: the state is still on the worker before,
          // which the next request must name. move() keeps that name.
          sessions_->move(key_hash, pinned, target, now);
          decision.pinned_now = true;
        } else if (entry != nullptr || sessions_->size() < kMaxTrackedSessions) {
          sessions_->pin(key_hash, target, now);
          decision.pinned_now = true;
        }
        decision.worker = target;
      }
    }
  }
  if (!decision.worker.empty()) {
    // Moved off a draining worker above.
  } else if (pinned_usable) {
    decision.worker = pinned;
    if (entry != nullptr || sessions_->size() < kMaxTrackedSessions) sessions_->touch(key_hash, pinned, now);
  } else {
    std::string target = nextReady(key_hash);
    if (target.empty()) return decision;
    if (fresh_key) {
      // Its ring owner is down, so the session starts elsewhere; it must stay there when the
      // owner returns. Nothing to adopt: no worker has seen it yet.
      if (sessions_->size() < kMaxTrackedSessions) {
        sessions_->pin(key_hash, target, now);
        decision.pinned_now = true;
      }
    } else {
      sessions_->move(key_hash, pinned, target, now);
      decision.moved_now = true;
      decision.pinned_now = true;
    }
    decision.worker = target;
  }
  entry = sessions_->find(key_hash);
  if (entry != nullptr && entry->moved) {
    decision.repinned = true;
    if (entry->announce_previous) decision.announce_previous = entry->previous_worker;
  }
  return decision;
}

size_t Router::replaceRing(RingPtr ring, WallTime now) {
  size_t pinned = 0;
  for (const std::string& worker : ring_->workerNames()) {
    if (!ring->indexOf(worker)) continue;  // a removed worker's sessions move on their next request
    for (uint64_t key_hash : sessions_->keysPinnedTo(worker, now)) {
      const SessionEntry* entry = sessions_->find(key_hash);
      if (entry == nullptr || entry->moved) continue;
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
