// Session key -> worker: the moved-keys table first, then the consistent-hash ring.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "proxy/routing/ring.h"
#include "proxy/routing/session_table.h"

namespace stickyproxy {

struct RouteDecision {
  std::string worker;            // empty: no worker can take the request
  std::string announce_previous; // non-empty: send X-Sticky-Previous-Worker with this name
  bool repinned = false;         // the key was moved by this or an earlier re-pin
  bool moved_now = false;        // this request moved the key: its worker could not take it
  bool pinned_now = false;       // this request moved or pinned the key (the state file must follow)
};

// Decides where each key goes. Owns the ring (immutable, swapped on membership change) and the
// session table. Not thread-safe: loop thread only.
class Router {
 public:
  // `is_ready(name)` tells whether a worker may take requests now.
  using ReadyPredicate = std::function<bool(const std::string& name)>;

  // `takes_new(name)` tells whether a worker may get new sessions; empty: same as `is_ready`.
  // A worker that is ready but takes no new sessions is draining: sessions active on it (seen
  // within the session table's idle window) keep reaching it; any other key whose ring owner
  // (or pin) it is moves to the next worker clockwise that takes new sessions, and is pinned
  // there without an announcement (its state, if any, is stale).
  Router(RingPtr ring, SessionTable* sessions, ReadyPredicate is_ready, ReadyPredicate takes_new = nullptr);

  // Routes one request of `key_hash` at `now` and records it in the session table (from its
  // first request: a session must stay where it moved even if its worker dies and returns
  // before its second). `fresh_key`: the key was minted for this request, so no worker has
  // its state yet.
  // A key whose worker is not ready moves to the next ready worker clockwise on the ring and
  // stays there (until it idles out), even after its first worker returns.
  RouteDecision route(uint64_t key_hash, WallTime now, bool fresh_key = false);

  // A worker went down (or is evicted): every session pinned to it moves now (not on its next
  // request), so that it stays moved when the worker returns. Returns how many moved.
  size_t repinSessionsOf(const std::string& worker, WallTime now);

  // Swaps in a ring for a changed set of workers. Sessions seen within the idle window whose
  // ring owner changes are pinned where they are (their state lives there); only new keys
  // follow the new ring. Returns how many sessions were pinned.
  size_t replaceRing(RingPtr ring, WallTime now);
  const RingPtr& ring() const { return ring_; }

 private:
  // The next worker clockwise from `key_hash` that takes new sessions; failing that the next
  // ready one (a draining worker beats no worker); "" when none is ready.
  std::string nextReady(uint64_t key_hash) const;

  RingPtr ring_;
  SessionTable* sessions_;
  ReadyPredicate is_ready_;
  ReadyPredicate takes_new_;
};

}  // namespace stickyproxy
