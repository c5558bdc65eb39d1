#include "proxy/routing/session_table.h"

#include <picojson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>
#include <optional>
#include <utility>

#include "proxy/net/file_util.h"
#include "proxy/net/hex.h"
#include "proxy/net/json_document.h"

namespace stickyproxy {

namespace {

using std::chrono::milliseconds;

// The state file: {"format": kFormat, "version": kVersion, "entries": [{"key_hash": "<16 hex>",
// "worker": "...", "previous_worker": "...", "announce_previous": bool, "last_seen_ms": N,
// "moved_at_ms": N}]}. Files written before moved_at_ms existed load with moved_at = last_seen.
// Key hashes are strings because JSON numbers are doubles, exact only up to 2^53.
constexpr const char* kFormat = "stickyproxy-moved-sessions";
constexpr double kVersion = 1;

// How long ago `last_seen` was, in whole milliseconds (negative if the clock stepped back).
// Compared in milliseconds so a very long configured window cannot overflow nanoseconds.
milliseconds idleFor(WallTime last_seen, WallTime now) {
  return std::chrono::duration_cast<milliseconds>(now - last_seen);
}

std::optional<uint64_t> keyHashFromHex(const std::string& text) {
  if (text.size() != 16) return std::nullopt;
  return parseHex(text);
}

std::optional<WallTime> wallTimeFromMs(double ms) {
  // Whole, non-negative, and small enough that system_clock's (nanosecond) duration holds it.
  const double max_ms = static_cast<double>(
      std::chrono::duration_cast<milliseconds>(WallTime::duration::max()).count());
  if (!std::isfinite(ms) || ms < 0 || ms > max_ms || std::floor(ms) != ms) return std::nullopt;
  return WallTime(std::chrono::duration_cast<WallTime::duration>(
      milliseconds(static_cast<milliseconds::rep>(ms))));
}

double wallTimeToMs(WallTime time) {
  return static_cast<double>(
      std::chrono::duration_cast<milliseconds>(time.time_since_epoch()).count());
}

void setError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

// Fetches member `name` of `object` if it exists with type T.
template <typename T>
const T* member(const picojson::object& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->second.is<T>()) return nullptr;
  return &it->second.get<T>();
}

// Parses and validates the whole document into `out` before anything touches the table, so
// a corrupt file cannot leave it half-loaded.
bool parseStateFile(const std::string& text, std::vector<std::pair<uint64_t, SessionEntry>>* out,
                    std::string* error) {
  picojson::value root;
  std::string parse_error = parseJsonDocument(text, &root);
  if (!parse_error.empty()) {
    *error = "invalid JSON: " + parse_error;
    return false;
  }
  if (!root.is<picojson::object>()) {
    *error = "top level is not an object";
    return false;
  }
  const picojson::object& top = root.get<picojson::object>();
  const std::string* format = member<std::string>(top, "format");
  const double* version = member<double>(top, "version");
  const picojson::array* entries = member<picojson::array>(top, "entries");
  if (format == nullptr || *format != kFormat) {
    *error = std::string("\"format\" is not \"") + kFormat + "\"";
    return false;
  }
  if (version == nullptr || *version != kVersion) {
    *error = "unsupported \"version\"";
    return false;
  }
  if (entries == nullptr) {
    *error = "\"entries\" is missing or not an array";
    return false;
  }
  out->reserve(entries->size());
  for (size_t i = 0; i < entries->size(); ++i) {
    const std::string where = "entries[" + std::to_string(i) + "]";
    if (!(*entries)[i].is<picojson::object>()) {
      *error = where + " is not an object";
      return false;
    }
    const picojson::object& object = (*entries)[i].get<picojson::object>();
    const std::string* key_hex = member<std::string>(object, "key_hash");
    const std::string* worker = member<std::string>(object, "worker");
    const std::string* previous = member<std::string>(object, "previous_worker");
    const bool* announce = member<bool>(object, "announce_previous");
    const double* last_seen_ms = member<double>(object, "last_seen_ms");
    const std::optional<uint64_t> key_hash =
        key_hex != nullptr ? keyHashFromHex(*key_hex) : std::nullopt;
    const std::optional<WallTime> last_seen =
        last_seen_ms != nullptr ? wallTimeFromMs(*last_seen_ms) : std::nullopt;
    if (!key_hash) {
      *error = where + ": \"key_hash\" must be 16 lowercase hex chars";
      return false;
    }
    if (worker == nullptr || worker->empty()) {
      *error = where + ": \"worker\" must be a non-empty string";
      return false;
    }
    if (previous == nullptr || announce == nullptr) {
      *error = where + ": \"previous_worker\" (string) and \"announce_previous\" (bool) required";
      return false;
    }
    if (!last_seen) {
      *error = where + ": \"last_seen_ms\" must be a whole, non-negative number of milliseconds";
      return false;
    }
    const double* moved_at_ms = member<double>(object, "moved_at_ms");
    const std::optional<WallTime> moved_at = moved_at_ms != nullptr ? wallTimeFromMs(*moved_at_ms) : last_seen;
    if (!moved_at) {
      *error = where + ": \"moved_at_ms\" must be a whole, non-negative number of milliseconds";
      return false;
    }
    if (worker->size() > 64 || previous->size() > 64) {
      *error = where + ": worker names are at most 64 characters";
      return false;
    }
    SessionEntry entry;
    entry.moved_at = *moved_at;
    entry.worker = *worker;
    entry.previous_worker = *previous;
    entry.moved = true;
    entry.announce_previous = *announce;
    entry.last_seen = *last_seen;
    out->emplace_back(*key_hash, std::move(entry));
  }
  return true;
}

// More distinct worker names than any config holds; a state file naming more is not ours.
constexpr size_t kMaxWorkerNames = 4096;

}  // namespace

SessionTable::SessionTable(milliseconds session_idle, milliseconds moved_idle, size_t max_entries)
    : session_idle_(session_idle), moved_idle_(moved_idle), max_entries_(std::max<size_t>(max_entries, 1)) {}

SessionTable::WorkerId SessionTable::idOf(const std::string& name) {
  auto it = ids_.find(name);
  if (it != ids_.end()) return it->second;
  auto id = static_cast<WorkerId>(names_.size());
  names_.push_back(name);
  ids_.emplace(name, id);
  active_.push_back(0);
  moved_count_.push_back(0);
  last_activity_.emplace_back();
  return id;
}

std::optional<SessionTable::WorkerId> SessionTable::findId(const std::string& name) const {
  auto it = ids_.find(name);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

SessionEntry SessionTable::entryOf(const Node& node) const {
  SessionEntry entry;
  entry.worker = names_[node.worker];
  if (node.moved) entry.previous_worker = names_[node.previous];
  entry.moved = node.moved;
  entry.announce_previous = node.announce;
  entry.last_seen = node.last_seen;
  entry.moved_at = node.moved_at;
  return entry;
}

std::optional<SessionEntry> SessionTable::find(uint64_t key_hash) const {
  auto it = index_.find(key_hash);
  if (it == index_.end()) return std::nullopt;
  return entryOf(*it->second);
}

void SessionTable::uncount(Node& node) {
  if (!node.counted) return;
  node.counted = false;
  --active_[node.worker];
}

void SessionTable::count(Node& node) {
  if (node.counted) return;
  node.counted = true;
  ++active_[node.worker];
}

void SessionTable::setWorker(Node& node, WorkerId worker) {
  if (node.worker == worker) return;
  bool counted = node.counted;
  uncount(node);
  if (node.moved) {
    --moved_count_[node.worker];
    ++moved_count_[worker];
  }
  node.worker = worker;
  if (counted) count(node);
}

void SessionTable::erase(List::iterator node) {
  Segment& segment = segmentOf(*node);
  uncount(*node);
  if (node->moved) --moved_count_[node->worker];
  if (segment.boundary == node) ++segment.boundary;
  index_.erase(node->key_hash);
  segment.list.erase(node);
}

void SessionTable::shrinkTo(size_t limit) {
  while (index_.size() > limit) {
    Segment& victim = plain_.list.empty() ? moved_ : plain_;
    erase(victim.list.begin());
    ++evictions_;
  }
}

void SessionTable::toBack(List::iterator node, Segment& to, WallTime now) {
  Segment& from = segmentOf(*node);
  if (from.boundary == node) ++from.boundary;
  to.list.splice(to.list.end(), from.list, node);
  if (to.boundary == to.list.end()) to.boundary = node;
  count(*node);
  node->last_seen = now;
  std::optional<WallTime>& last = last_activity_[node->worker];
  if (!last || *last < now) last = now;
}

SessionTable::List::iterator SessionTable::nodeFor(uint64_t key_hash, WorkerId worker, WallTime now) {
  auto found = index_.find(key_hash);
  if (found != index_.end()) return found->second;
  shrinkTo(max_entries_ - 1);
  Node node;
  node.key_hash = key_hash;
  node.worker = worker;
  node.last_seen = now;
  plain_.list.push_back(node);
  auto it = std::prev(plain_.list.end());
  if (plain_.boundary == plain_.list.end()) plain_.boundary = it;
  count(*it);
  index_.emplace(key_hash, it);
  return it;
}

void SessionTable::touch(uint64_t key_hash, const std::string& worker, WallTime now) {
  touch(key_hash, idOf(worker), now);
}

void SessionTable::touch(uint64_t key_hash, WorkerId id, WallTime now) {
  auto node = nodeFor(key_hash, id, now);
  if (!node->moved) setWorker(*node, id);
  toBack(node, segmentOf(*node), now);
}

void SessionTable::relocate(List::iterator node, WorkerId to, WallTime now) {
  if (!node->moved) {
    uncount(*node);
    if (plain_.boundary == node) ++plain_.boundary;
    moved_.list.splice(moved_.list.end(), plain_.list, node);
    node->moved = true;
    ++moved_count_[node->worker];
  }
  setWorker(*node, to);
  node->moved_at = now;
  toBack(node, moved_, now);
}

void SessionTable::move(uint64_t key_hash, const std::string& from, const std::string& to, WallTime now) {
  WorkerId from_id = idOf(from);
  WorkerId to_id = idOf(to);
  auto node = nodeFor(key_hash, to_id, now);
  // The previous worker is where the session's state is. If `from` was never told about the
  // session (its move is still unannounced), the state is still with the worker before it:
  // keep naming that one. Going back there, `from` is named: it may have adopted the files
  // under a request whose answer never came (the app finds them either way).
  const bool state_not_adopted = node->moved && node->worker == from_id && node->announce;
  if (!state_not_adopted || node->previous == to_id) node->previous = from_id;
  node->announce = true;
  relocate(node, to_id, now);
}

void SessionTable::pin(uint64_t key_hash, const std::string& worker, WallTime now) {
  WorkerId id = idOf(worker);
  auto node = nodeFor(key_hash, id, now);
  if (!node->moved) node->previous = id;
  node->announce = false;
  relocate(node, id, now);
}

void SessionTable::markAnnounced(uint64_t key_hash) {
  auto it = index_.find(key_hash);
  if (it != index_.end()) it->second->announce = false;
}

std::vector<uint64_t> SessionTable::keysPinnedTo(const std::string& worker) const {
  std::vector<uint64_t> keys;
  std::optional<WorkerId> id = findId(worker);
  if (!id) return keys;
  for (const List* list : {&plain_.list, &moved_.list}) {
    for (const Node& node : *list) {
      if (node.worker == *id) keys.push_back(node.key_hash);
    }
  }
  return keys;
}

void SessionTable::retireIdle(Segment& segment, WallTime now) {
  while (segment.boundary != segment.list.end() && idleFor(segment.boundary->last_seen, now) > session_idle_) {
    uncount(*segment.boundary);
    ++segment.boundary;
  }
}

size_t SessionTable::advance(WallTime now) {
  retireIdle(plain_, now);
  retireIdle(moved_, now);
  size_t dropped = 0;
  // Both lists are in last-request order, so the idle ones are at their fronts.
  while (!plain_.list.empty() && idleFor(plain_.list.front().last_seen, now) > session_idle_) {
    erase(plain_.list.begin());
    ++dropped;
  }
  while (!moved_.list.empty() && idleFor(moved_.list.front().last_seen, now) > moved_idle_) {
    erase(moved_.list.begin());
    ++dropped;
  }
  return dropped;
}

std::map<std::string, size_t> SessionTable::activeSessionsPerWorker() const {
  std::map<std::string, size_t> counts;
  for (size_t id = 0; id < names_.size(); ++id) {
    if (active_[id] > 0) counts[names_[id]] = active_[id];
  }
  return counts;
}

size_t SessionTable::activeSessionsOf(const std::string& worker) const {
  std::optional<WorkerId> id = findId(worker);
  return id ? active_[*id] : 0;
}

std::optional<WallTime> SessionTable::lastActivityOf(const std::string& worker) const {
  std::optional<WorkerId> id = findId(worker);
  return id ? last_activity_[*id] : std::nullopt;
}

std::map<std::string, size_t> SessionTable::movedPerWorker() const {
  std::map<std::string, size_t> counts;
  for (size_t id = 0; id < names_.size(); ++id) {
    if (moved_count_[id] > 0) counts[names_[id]] = moved_count_[id];
  }
  return counts;
}

MovedEntries SessionTable::movedEntries() const {
  MovedEntries moved;
  moved.reserve(moved_.list.size());
  for (const Node& node : moved_.list) moved.emplace_back(node.key_hash, entryOf(node));
  return moved;
}

bool SessionTable::save(const std::string& path, std::string* error) const {
  return writeMovedEntries(movedEntries(), path, error);
}

bool writeMovedEntries(MovedEntries moved, const std::string& path, std::string* error) {
  std::sort(moved.begin(), moved.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  picojson::array entries;
  entries.reserve(moved.size());
  for (const auto& [key_hash, entry] : moved) {
    picojson::object object;
    object["key_hash"] = picojson::value(hexOf(key_hash));
    object["worker"] = picojson::value(entry.worker);
    object["previous_worker"] = picojson::value(entry.previous_worker);
    object["announce_previous"] = picojson::value(entry.announce_previous);
    object["last_seen_ms"] = picojson::value(wallTimeToMs(entry.last_seen));
    object["moved_at_ms"] = picojson::value(wallTimeToMs(entry.moved_at));
    entries.emplace_back(std::move(object));
  }
  picojson::object top;
  top["format"] = picojson::value(kFormat);
  top["version"] = picojson::value(kVersion);
  top["entries"] = picojson::value(std::move(entries));
  const std::string text = picojson::value(std::move(top)).serialize(true);

  return writeFileAtomically(path, text, error);
}

bool SessionTable::load(const std::string& path, WallTime now, std::string* error) {
  std::string text;
  if (!readWholeFile(path, &text)) {
    if (errno == ENOENT) return true;
    setError(error, path + ": read: " + errnoText(errno));
    return false;
  }
  std::vector<std::pair<uint64_t, SessionEntry>> loaded;
  std::string parse_error;
  if (!parseStateFile(text, &loaded, &parse_error)) {
    setError(error, path + ": " + parse_error);
    return false;
  }
  std::erase_if(loaded, [&](const auto& item) {
    return idleFor(item.second.last_seen, now) > moved_idle_ || index_.count(item.first) > 0;
  });
  // The most recently seen first, so that the ceiling keeps those; then inserted oldest first,
  // as the lists are in last-request order.
  std::sort(loaded.begin(), loaded.end(),
            [](const auto& a, const auto& b) { return a.second.last_seen > b.second.last_seen; });
  size_t room = max_entries_ > index_.size() ? max_entries_ - index_.size() : 0;
  if (loaded.size() > room) loaded.resize(room);
  for (auto it = loaded.rbegin(); it != loaded.rend(); ++it) {
    const SessionEntry& entry = it->second;
    if (names_.size() + 2 > kMaxWorkerNames && (!findId(entry.worker) || !findId(entry.previous_worker))) continue;
    WorkerId worker = idOf(entry.worker);
    auto node = nodeFor(it->first, worker, entry.last_seen);
    relocate(node, worker, entry.moved_at);
    node->previous = entry.previous_worker.empty() ? worker : idOf(entry.previous_worker);
    node->announce = entry.announce_previous && !entry.previous_worker.empty();
    node->last_seen = entry.last_seen;
  }
  // What counts as active among the loaded entries is settled here.
  advance(now);
  return true;
}

void SessionTable::setLimits(milliseconds session_idle, milliseconds moved_idle, size_t max_entries) {
  session_idle_ = session_idle;
  moved_idle_ = moved_idle;
  max_entries_ = std::max<size_t>(max_entries, 1);
  shrinkTo(max_entries_);
}

}  // namespace stickyproxy
