// The sessions the proxy has seen, and the keys it moved off a failed worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace stickyproxy {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

struct SessionEntry {
  std::string worker;              // where the session is pinned now
  std::string previous_worker;     // set when moved: the worker it was moved away from
  // Pinned by a move, not by the ring: survives the old worker's return.
  bool moved = false;
  bool announce_previous = false;  // the next forwarded request must carry X-Sticky-Previous-Worker
  WallTime last_seen;              // wall clock, so it can be persisted
};

// The moved entries of a SessionTable at one moment, detached from it: what its state file holds.
// Made on the table's thread by SessionTable::movedEntries(), written on any thread by
// writeMovedEntries().
using MovedEntries = std::vector<std::pair<uint64_t, SessionEntry>>;

// Writes `moved` to the JSON file `path`, atomically: "<path>.tmp" is written, fsynced and
// renamed over `path`, then the directory is fsynced, so a crash leaves either the old or the
// new file. Keys appear only as 16-hex-char hashes; entries are sorted by key hash, so the same
// entries always produce the same bytes. Returns false and sets `*error` (if non-null) on
// failure; `path` is then unchanged. Two writes to the same `path` must not overlap.
bool writeMovedEntries(MovedEntries moved, const std::string& path, std::string* error);

// Sessions keyed by `key_hash = stableHash(key)`: no raw key is ever stored here or written to
// disk. Entries pinned by the ring only count sessions; moved entries override the ring.
// Times are wall-clock because moved entries outlive the process; a clock step only shortens
// or lengthens idle windows, it never corrupts the table.
// Not thread-safe: use from one thread (the proxy's loop).
class SessionTable {
 public:
  // `session_idle`: an entry counts as an active session this long after its last request.
  // `moved_idle`: a moved entry is kept this long after its last request (then the ring decides
  // again).
  SessionTable(std::chrono::milliseconds session_idle, std::chrono::milliseconds moved_idle);

  // The entry of `key_hash`, or nullptr. Valid until the next non-const call.
  const SessionEntry* find(uint64_t key_hash) const;

  // Records a request of `key_hash` routed to `worker` at `now`. Creates a non-moved entry if
  // absent; re-points a non-moved entry to `worker` (the ring may have changed); for a moved
  // entry only updates last_seen, since the move's pin wins over the ring.
  void touch(uint64_t key_hash, const std::string& worker, WallTime now);

  // Pins `key_hash` to `to` (moved, last_seen = now) and records in previous_worker where the
  // session's state is, to be announced on its next request: normally `from`. When `from` was
  // itself an unannounced move target (it never saw the session), the earlier previous_worker
  // still holds the state and stays; and if that is `to`, there is nothing to announce.
  void move(uint64_t key_hash, const std::string& from, const std::string& to, WallTime now);

  // Pins `key_hash` to `worker`, where its state already is: a move with nothing to announce.
  // Used when the ring changes under a live session, so that the session does not follow it.
  void pin(uint64_t key_hash, const std::string& worker, WallTime now);

  // Clears announce_previous (the app has been told). No-op for an unknown key.
  void markAnnounced(uint64_t key_hash);

  // Keys whose current pin is `worker` (moved or not), seen within the longer of the two idle
  // windows before `now`. Unordered.
  std::vector<uint64_t> keysPinnedTo(const std::string& worker, WallTime now) const;
  // As above, at system_clock::now().
  std::vector<uint64_t> keysPinnedTo(const std::string& worker) const;

  // Active sessions (seen within session_idle before `now`) per worker name. Workers with none
  // are absent.
  std::map<std::string, size_t> activeSessionsPerWorker(WallTime now) const;

  // Sessions pinned to `worker` (moved or not) seen within `window` before `now`: what keeps a
  // draining worker from being drained.
  size_t activeSessionsOf(const std::string& worker, WallTime now, std::chrono::milliseconds window) const;

  // Moved entries per worker they are pinned to now. Workers with none are absent.
  std::map<std::string, size_t> movedPerWorker() const;

  // The window within which a session counts as active.
  std::chrono::milliseconds sessionIdle() const { return session_idle_; }

  // Number of moved entries.
  size_t movedCount() const { return moved_count_; }
  // Number of entries, moved or not.
  size_t size() const { return entries_.size(); }

  // Drops non-moved entries idle longer than session_idle and moved ones idle longer than
  // moved_idle; returns how many were dropped.
  size_t expire(WallTime now);

  // A copy of the moved entries, for writeMovedEntries() (which may run on another thread).
  MovedEntries movedEntries() const;

  // writeMovedEntries(movedEntries(), path, error), on this thread.
  bool save(const std::string& path, std::string* error) const;

  // Loads moved entries written by save(), skipping those already idle longer than moved_idle
  // at `now`. Keys already in the table keep their entry (it is newer). A missing file is not
  // an error: returns true and loads nothing. An unreadable or corrupt file returns false,
  // sets `*error` (if non-null) and leaves the table unchanged. Never throws on file contents.
  bool load(const std::string& path, WallTime now, std::string* error);

  // Replaces the idle windows (on config reload). Takes effect at the next query or expire().
  void setIdleWindows(std::chrono::milliseconds session_idle, std::chrono::milliseconds moved_idle);

 private:
  // Key hashes come from XXH64, already uniformly spread: hashing them again would add nothing.
  struct IdentityHash {
    size_t operator()(uint64_t key_hash) const { return static_cast<size_t>(key_hash); }
  };

  std::chrono::milliseconds session_idle_;
  std::chrono::milliseconds moved_idle_;
  std::unordered_map<uint64_t, SessionEntry, IdentityHash> entries_;
  size_t moved_count_ = 0;
};

}  // namespace stickyproxy
