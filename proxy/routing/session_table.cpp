#include "proxy/routing/session_table.h"

#include <picojson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>
#include <optional>
#include <utility>

#include "proxy/net/file_util.h"

namespace stickyproxy {

namespace {

using std::chrono::milliseconds;

// The state file: {"format": kFormat, "version": kVersion, "entries": [{"key_hash": "<16 hex>",
// "worker": "...", "previous_worker": "...", "announce_previous": bool, "last_seen_ms": N}]}.
// Key hashes are strings because JSON numbers are doubles, exact only up to 2^53.
constexpr const char* kFormat = "stickyproxy-moved-sessions";
constexpr double kVersion = 1;
constexpr char kHexDigits[] = "0123456789abcdef";

// How long ago `last_seen` was, in whole milliseconds (negative if the clock stepped back).
// Compared in milliseconds so a very long configured window cannot overflow nanoseconds.
milliseconds idleFor(WallTime last_seen, WallTime now) {
  return std::chrono::duration_cast<milliseconds>(now - last_seen);
}

std::string keyHashToHex(uint64_t key_hash) {
  std::string out(16, '0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = kHexDigits[(key_hash >> (60 - 4 * i)) & 0x0f];
  }
  return out;
}

std::optional<uint64_t> keyHashFromHex(const std::string& text) {
  if (text.size() != 16) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    value = (value << 4) | digit;
  }
  return value;
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
  std::string parse_error;
  // picojson throws from a number that overflows a double ("1e999"): contain it here.
  try {
    auto end = picojson::parse(root, text.begin(), text.end(), &parse_error);
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    if (parse_error.empty() && !std::all_of(end, text.end(), is_space)) {
      parse_error = "trailing data after the JSON document";
    }
  } catch (const std::exception& e) {
    parse_error = std::string("unparsable JSON (") + e.what() + ")";
  }
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
    SessionEntry entry;
    entry.worker = *worker;
    entry.previous_worker = *previous;
    entry.moved = true;
    entry.announce_previous = *announce;
    entry.last_seen = *last_seen;
    out->emplace_back(*key_hash, std::move(entry));
  }
  return true;
}

}  // namespace

SessionTable::SessionTable(milliseconds session_idle, milliseconds moved_idle)
    : session_idle_(session_idle), moved_idle_(moved_idle) {}

const SessionEntry* SessionTable::find(uint64_t key_hash) const {
  auto it = entries_.find(key_hash);
  return it == entries_.end() ? nullptr : &it->second;
}

void SessionTable::touch(uint64_t key_hash, const std::string& worker, WallTime now) {
  auto [it, inserted] = entries_.try_emplace(key_hash);
  SessionEntry& entry = it->second;
  if (inserted || !entry.moved) entry.worker = worker;
  entry.last_seen = now;
}

void SessionTable::move(uint64_t key_hash, const std::string& from, const std::string& to,
                        WallTime now) {
  SessionEntry& entry = entries_[key_hash];
  // The previous worker is where the session's state is. If `from` was never told about the
  // session (its move is still unannounced), the state is still with the worker before it:
  // keep naming that one, unless the session is going back there (nothing to adopt then).
  const bool state_not_adopted = entry.moved && entry.worker == from && entry.announce_previous;
  if (state_not_adopted) {
    if (entry.previous_worker == to) entry.announce_previous = false;
  } else {
    entry.previous_worker = from;
    entry.announce_previous = true;
  }
  if (!entry.moved) ++moved_count_;
  entry.worker = to;
  entry.moved = true;
  entry.last_seen = now;
}

void SessionTable::pin(uint64_t key_hash, const std::string& worker, WallTime now) {
  SessionEntry& entry = entries_[key_hash];
  if (!entry.moved) ++moved_count_;
  entry.worker = worker;
  entry.moved = true;
  entry.announce_previous = false;
  entry.last_seen = now;
}

void SessionTable::markAnnounced(uint64_t key_hash) {
  auto it = entries_.find(key_hash);
  if (it != entries_.end()) it->second.announce_previous = false;
}

std::vector<uint64_t> SessionTable::keysPinnedTo(const std::string& worker, WallTime now) const {
  const milliseconds window = std::max(session_idle_, moved_idle_);
  std::vector<uint64_t> keys;
  for (const auto& [key_hash, entry] : entries_) {
    if (entry.worker == worker && idleFor(entry.last_seen, now) <= window) {
      keys.push_back(key_hash);
    }
  }
  return keys;
}

std::vector<uint64_t> SessionTable::keysPinnedTo(const std::string& worker) const {
  return keysPinnedTo(worker, std::chrono::system_clock::now());
}

std::map<std::string, size_t> SessionTable::activeSessionsPerWorker(WallTime now) const {
  std::map<std::string, size_t> counts;
  for (const auto& [key_hash, entry] : entries_) {
    if (idleFor(entry.last_seen, now) <= session_idle_) ++counts[entry.worker];
  }
  return counts;
}

size_t SessionTable::activeSessionsOf(const std::string& worker, WallTime now, milliseconds window) const {
  size_t count = 0;
  for (const auto& [key_hash, entry] : entries_) {
    if (entry.worker == worker && idleFor(entry.last_seen, now) <= window) ++count;
  }
  return count;
}

std::map<std::string, size_t> SessionTable::movedPerWorker() const {
  std::map<std::string, size_t> counts;
  for (const auto& [key_hash, entry] : entries_) {
    if (entry.moved) ++counts[entry.worker];
  }
  return counts;
}

size_t SessionTable::expire(WallTime now) {
  size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const SessionEntry& entry = it->second;
    if (idleFor(entry.last_seen, now) > (entry.moved ? moved_idle_ : session_idle_)) {
      if (entry.moved) --moved_count_;
      it = entries_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

MovedEntries SessionTable::movedEntries() const {
  MovedEntries moved;
  moved.reserve(moved_count_);
  for (const auto& [key_hash, entry] : entries_) {
    if (entry.moved) moved.emplace_back(key_hash, entry);
  }
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
    object["key_hash"] = picojson::value(keyHashToHex(key_hash));
    object["worker"] = picojson::value(entry.worker);
    object["previous_worker"] = picojson::value(entry.previous_worker);
    object["announce_previous"] = picojson::value(entry.announce_previous);
    object["last_seen_ms"] = picojson::value(wallTimeToMs(entry.last_seen));
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
  for (auto& [key_hash, entry] : loaded) {
    if (idleFor(entry.last_seen, now) > moved_idle_) continue;
    auto [it, inserted] = entries_.try_emplace(key_hash, std::move(entry));
    if (inserted) ++moved_count_;
  }
  return true;
}

void SessionTable::setIdleWindows(milliseconds session_idle, milliseconds moved_idle) {
  session_idle_ = session_idle;
  moved_idle_ = moved_idle;
}

}  // namespace stickyproxy
