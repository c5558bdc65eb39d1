// The sessions the proxy has seen recently, and the keys it moved off their worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
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
  WallTime moved_at;               // moved entries: when the move (or pin) happened
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
// disk. Entries pinned by the ring only count sessions; moved entries override the ring for
// clients that lost the re-issued cookie that carries their pin.
//
// Bounded: at most `max_entries` entries on every insertion path (load() included). Inserting
// into a full table drops the least recently seen entry, a ring-pinned one before any moved
// one. Nothing is lost for correctness by that: the routing cookie carries the pin.
//
// Per-worker counts (active sessions, moved keys, last activity) are kept up to date as entries
// change, so reading them costs O(workers), never O(table). Entries sit in two lists ordered by
// last request, which lets advance() retire idle entries in O(entries retired).
// Times are wall-clock because moved entries outlive the process; a clock step only shortens
// or lengthens idle windows (an entry retires no earlier than those recorded before it), it
// never corrupts the table.
// Not thread-safe: use from one thread (the proxy's loop).
class SessionTable {
 public:
  // `session_idle`: an entry counts as an active session this long after its last request.
  // `moved_idle`: a moved entry is kept this long after its last request (then the ring decides
  // again). `max_entries`: the ceiling, at least 1.
  SessionTable(std::chrono::milliseconds session_idle, std::chrono::milliseconds moved_idle,
               size_t max_entries = kDefaultMaxEntries);
  static constexpr size_t kDefaultMaxEntries = 500000;
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // A copy of the entry of `key_hash`, or nullopt.
  std::optional<SessionEntry> find(uint64_t key_hash) const;

  // Records a request of `key_hash` routed to `worker` at `now`. Creates a non-moved entry if
  // absent; re-points a non-moved entry to `worker` (the ring may have changed); for a moved
  // entry only updates last_seen, since the move's pin wins over the ring.
  void touch(uint64_t key_hash, const std::string& worker, WallTime now);
  // The table's number for worker `name`, made on first use and never changed afterwards: what
  // the router keeps per ring index, so that recording a request looks nothing up by name.
  using WorkerId = uint16_t;
  WorkerId workerId(const std::string& name) { return idOf(name); }
  // touch() for the worker numbered `worker` by workerId().
  void touch(uint64_t key_hash, WorkerId worker, WallTime now);

  // Pins `key_hash` to `to` (moved, last_seen = moved_at = now) and records in previous_worker
  // where the session's state is, to be announced on its next request: normally `from`. When
  // `from` was itself an unannounced move target (it may never have seen the session), the
  // earlier previous_worker still holds the state and stays, unless that is `to`: then `from` is
  // named, as it may have adopted the state under a request whose answer never came.
  void move(uint64_t key_hash, const std::string& from, const std::string& to, WallTime now);

  // Pins `key_hash` to `worker`, where its state already is: a move with nothing to announce.
  void pin(uint64_t key_hash, const std::string& worker, WallTime now);

  // Clears announce_previous (the app has been told). No-op for an unknown key.
  void markAnnounced(uint64_t key_hash);

  // Keys whose current pin is `worker` (moved or not). O(table): for worker deaths, evictions
  // and reloads, never per request.
  std::vector<uint64_t> keysPinnedTo(const std::string& worker) const;

  // Brings the counts up to `now` and drops non-moved entries idle longer than session_idle and
  // moved ones idle longer than moved_idle. Returns how many were dropped.
  size_t advance(WallTime now);

  // Active sessions (seen within session_idle as of the last advance() or change) per worker
  // name. Workers with none are absent.
  std::map<std::string, size_t> activeSessionsPerWorker() const;
  // Active sessions pinned to `worker`.
  size_t activeSessionsOf(const std::string& worker) const;
  // When a request of a session pinned to `worker` was last recorded (touch, move or pin to it);
  // nullopt if never. What decides that a draining worker is drained.
  std::optional<WallTime> lastActivityOf(const std::string& worker) const;
  // Moved entries per worker they are pinned to now. Workers with none are absent.
  std::map<std::string, size_t> movedPerWorker() const;

  // The window within which a session counts as active.
  std::chrono::milliseconds sessionIdle() const { return session_idle_; }

  size_t movedCount() const { return moved_.list.size(); }
  size_t size() const { return index_.size(); }
  size_t maxEntries() const { return max_entries_; }
  // Entries dropped to make room since the table was made.
  uint64_t evictions() const { return evictions_; }

  // A copy of the moved entries, for writeMovedEntries() (which may run on another thread).
  MovedEntries movedEntries() const;

  // writeMovedEntries(movedEntries(), path, error), on this thread.
  bool save(const std::string& path, std::string* error) const;

  // Loads moved entries written by save(), skipping those already idle longer than moved_idle
  // at `now`, and, when they do not all fit under the ceiling, the least recently seen. Keys
  // already in the table keep their entry (it is newer). A missing file is not an error:
  // returns true and loads nothing. An unreadable or corrupt file returns false, sets `*error`
  // (if non-null) and leaves the table unchanged. Never throws on file contents.
  bool load(const std::string& path, WallTime now, std::string* error);

  // Replaces the idle windows and the ceiling (on config reload); a lower ceiling drops the
  // least recently seen entries now. The windows take effect at the next advance().
  void setLimits(std::chrono::milliseconds session_idle, std::chrono::milliseconds moved_idle, size_t max_entries);

 private:
  struct Node {
    uint64_t key_hash = 0;
    WorkerId worker = 0;
    WorkerId previous = 0;
    bool moved = false;
    bool announce = false;
    bool counted = false;  // included in active_[worker]
    WallTime last_seen;
    WallTime moved_at;
  };
  using List = std::list<Node>;
  // One list in last-request order. Nodes from `boundary` to the end are counted as active;
  // those before it are idle.
  struct Segment {
    List list;
    List::iterator boundary = list.end();
  };
  // Key hashes come from XXH64, already uniformly spread: hashing them again would add nothing.
  struct IdentityHash {
    size_t operator()(uint64_t key_hash) const { return static_cast<size_t>(key_hash); }
  };

  WorkerId idOf(const std::string& name);
  std::optional<WorkerId> findId(const std::string& name) const;
  Segment& segmentOf(const Node& node) { return node.moved ? moved_ : plain_; }
  // The node of `key_hash`, created (as a plain node of `worker`, last in its list) if absent.
  List::iterator nodeFor(uint64_t key_hash, WorkerId worker, WallTime now);
  // Moves `node` to the end of `to` (its segment, or the other one), counted as active.
  void toBack(List::iterator node, Segment& to, WallTime now);
  // Makes `node` a moved node of worker `to`, moved at `now`, last in the moved list.
  void relocate(List::iterator node, WorkerId to, WallTime now);
  void setWorker(Node& node, WorkerId worker);
  void uncount(Node& node);
  void count(Node& node);
  void erase(List::iterator node);
  // Drops least recently seen entries until at most `limit` are left.
  void shrinkTo(size_t limit);
  void retireIdle(Segment& segment, WallTime now);
  SessionEntry entryOf(const Node& node) const;

  std::chrono::milliseconds session_idle_;
  std::chrono::milliseconds moved_idle_;
  size_t max_entries_;
  Segment plain_;
  Segment moved_;
  std::unordered_map<uint64_t, List::iterator, IdentityHash> index_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, WorkerId> ids_;
  std::vector<size_t> active_;        // by WorkerId
  std::vector<size_t> moved_count_;   // by WorkerId
  std::vector<std::optional<WallTime>> last_activity_;  // by WorkerId
  uint64_t evictions_ = 0;
};

}  // namespace stickyproxy
