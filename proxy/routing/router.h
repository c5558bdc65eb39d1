// Session -> worker: the signed cookie's pin and the moved-keys table, then the consistent-hash
// ring for sessions that have no pin yet.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proxy/routing/ring.h"
#include "proxy/routing/routing_cookie.h"
#include "proxy/routing/session_table.h"

namespace stickyproxy {

// What a worker may take now.
enum class Availability {
  kDown,      // nothing: dead, unhealthy, or not configured
  kEvicted,   // up, but its sessions must leave (admin evict or restart); a last resort only
  kDraining,  // its active sessions, no new ones
  kPaused,    // restarting in place: its sessions wait for it, new ones go elsewhere
  kReady,     // everything
};

// One request to route.
struct RouteRequest {
  uint64_t key_hash = 0;
  // The key was minted for this request: no worker has its state yet, and it makes no state here.
  bool fresh = false;
  // The key came in a verified cookie (or was minted): the table may hold it. False for a key of
  // the unsigned format still accepted during an upgrade, which is routed by its cookie's
  // shape alone and never recorded.
  bool trusted = true;
  // The pin of a verified cookie.
  std::optional<CookiePin> pin;
};

struct RouteDecision {
  std::string worker;             // empty: no worker can take the request
  // The worker's index in the ring routed by (Router::ring()->workerNames()); unset with `worker` empty.
  std::optional<uint32_t> worker_index;
  std::string announce_previous;  // non-empty: send X-Sticky-Previous-Worker with this name
  bool repinned = false;          // the session lives off its ring owner (for the access log)
  bool moved_now = false;         // this request moved the session: its worker could not take it
  bool table_changed = false;     // the moved-keys table changed (the state file must follow)
  // The pin the client's cookie must carry from now on; unset when no worker was found.
  std::optional<CookiePin> cookie_pin;
};

// Decides where each request goes. Owns the ring (immutable, swapped on membership change) and
// uses the session table. Not thread-safe: loop thread only.
//
// A session lives where its cookie's pin says, unless the table knows of a later move. A
// session whose worker cannot take it moves to the next worker clockwise that takes new sessions
// (a draining, then an evicted one, beats none) and stays there: its cookie is re-issued with the
// new pin. Every such move of a known session names the worker it left in announce_previous, so
// that the app adopts its files there, even when the table forgot the session.
//
// Workers are named by their index in the ring's sorted names (Ring::workerNames()), which the
// caller's availability callback reads by array indexing; a name is looked up only when it comes
// from outside (a cookie's pin, the session table), by binary search over the ring's few names.
class Router {
 public:
  // What worker `index` (into ring()->workerNames()) may take now.
  using AvailabilityOf = std::function<Availability(size_t index)>;

  Router(RingPtr ring, SessionTable* sessions, AvailabilityOf availability);

  // Routes one request at `now` and records it in the session table.
  RouteDecision route(const RouteRequest& request, WallTime now);

  // Every session the table holds pinned to `worker` moves now to the next worker that takes
  // new sessions, announced on its next request (admin evict). Returns how many moved.
  size_t repinSessionsOf(const std::string& worker, WallTime now);

  // Swaps in a ring for a changed set of workers. Sessions in the table whose ring owner changes
  // are pinned where they are (their state lives there); only new keys follow the new ring.
  // Returns how many sessions were pinned.
  size_t replaceRing(RingPtr ring, WallTime now);
  const RingPtr& ring() const { return ring_; }

 private:
  // The next worker clockwise from `key_hash` that takes new sessions; failing that a draining
  // one, then an evicted one; "" when none is up.
  std::optional<size_t> nextReady(uint64_t key_hash) const;
  // What worker `name` may take: kDown when it is not on the ring (it left with a reload).
  Availability availabilityOf(std::optional<size_t> index) const;

  // Sets ring_ and numbers its workers in the session table.
  void setRing(RingPtr ring);

  RingPtr ring_;
  SessionTable* sessions_;
  AvailabilityOf availability_;
  std::vector<SessionTable::WorkerId> table_ids_;  // by ring index: SessionTable::workerId()
};

// Whole seconds since the Unix epoch of `time`: the resolution of a cookie's pin time.
int64_t unixSeconds(WallTime time);

}  // namespace stickyproxy
