#include "backend/session/session_store.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include <picojson.h>

#include "backend/session/derived_file.h"
#include "backend/session/directory_listing.h"
#include "proxy/net/file_util.h"
#include "proxy/net/json_document.h"

namespace stickyproxy::backend {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "session.json";
constexpr const char* kViewFile = "view.json";

std::string randomId() {
  unsigned char bytes[16];
  size_t filled = 0;
  while (filled < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (n > 0) filled += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char byte : bytes) {
    id.push_back(kHex[byte >> 4]);
    id.push_back(kHex[byte & 0xf]);
  }
  return id;
}

double toMs(WallClock::time_point time) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count());
}

WallClock::time_point fromMs(double ms) {
  return WallClock::time_point(std::chrono::duration_cast<WallClock::duration>(
      std::chrono::milliseconds(static_cast<int64_t>(ms))));
}

}  // namespace

namespace {

// SessionState::holdsData/holdsAnalysis for either slot.
template <typename T>
bool holdsOrTakesBack(std::shared_ptr<const T>& slot, const void* evicted, const std::shared_ptr<const T>& held) {
  if (held == nullptr) return slot == nullptr;
  if (slot == held) return true;
  if (slot != nullptr || evicted != held.get()) return false;
  slot = held;
  return true;
}

}  // namespace

bool SessionState::holdsData(const std::shared_ptr<const UploadedData>& held) {
  return holdsOrTakesBack(data, evicted_data, held);
}

bool SessionState::holdsAnalysis(const std::shared_ptr<const AnalysisResult>& held) {
  return holdsOrTakesBack(analysis, evicted_analysis, held);
}

size_t SessionStore::loadedBytes() const {
  size_t total = 0;
  for (const auto& entry : sessions_) total += entry.second->loaded_bytes;
  return total;
}

size_t SessionStore::noteLoaded(SessionState& session, size_t bytes) {
  session.loaded_bytes = bytes;
  if (memory_budget_ == 0) return 0;
  size_t total = loadedBytes();
  if (total <= memory_budget_) return 0;
  std::vector<SessionState*> candidates;
  for (const auto& entry : sessions_) {
    if (entry.second.get() != &session && entry.second->loaded_bytes > 0) candidates.push_back(entry.second.get());
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const SessionState* a, const SessionState* b) { return a->last_used < b->last_used; });
  size_t evicted = 0;
  for (SessionState* victim : candidates) {
    if (total <= memory_budget_) break;
    total -= victim->loaded_bytes;
    victim->evicted_data = victim->data.get();
    victim->evicted_analysis = victim->analysis.get();
    victim->data.reset();
    victim->analysis.reset();
    victim->analysis_request.reset();  // a rebuilt analysis is run from variables_used
    victim->rendered_for.reset();
    victim->rendered_pages.clear();
    victim->loaded_bytes = 0;
    ++evicted;
  }
  evictions_ += evicted;
  return evicted;
}

SessionStore::SessionStore(std::string state_dir, std::string worker, std::chrono::milliseconds idle_timeout)
    : state_dir_(std::move(state_dir)),
      worker_(std::move(worker)),
      uploads_root_(state_dir_ + "/" + worker_ + "/uploads"),
      idle_timeout_(idle_timeout) {
  std::error_code ignored;
  fs::create_directories(uploads_root_, ignored);
}

bool SessionStore::isValidId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool SessionStore::isValidWorkerName(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string SessionStore::directoryOf(std::string_view id) const { return uploads_root_ + "/" + std::string(id); }

SessionState* SessionStore::create(WallClock::time_point now, std::string* error) {
  std::string id = randomId();
  std::error_code failure;
  fs::create_directories(directoryOf(id), failure);
  if (failure) {
    if (error != nullptr) *error = directoryOf(id) + ": " + failure.message();
    return nullptr;
  }
  auto session = std::make_unique<SessionState>();
  session->id = id;
  session->created = now;
  session->last_used = now;
  SessionState* created = session.get();
  sessions_[id] = std::move(session);
  if (!save(*created, error)) return nullptr;
  return created;
}

SessionState* SessionStore::find(std::string_view id, WallClock::time_point now) {
  if (!isValidId(id)) return nullptr;
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  const std::string directory = directoryOf(id);  // before the erase below: `id` may view the session's own id
  if (!holdsSession(directory)) {
    // Another worker adopted the files while this one held the session in memory. Anything at
    // the path now was recreated by a late write of ours (a chunk, an extracted shapefile) and
    // would only block the rename of a later adoption back here.
    sessions_.erase(it);
    std::error_code ignored;
    fs::remove_all(directory, ignored);
    return nullptr;
  }
  it->second->last_used = now;
  return it->second.get();
}

SessionState* SessionStore::rotate(std::string_view id, WallClock::time_point now, std::string* error) {
  if (find(id, now) == nullptr) return nullptr;
  const std::string old_id(id);  // a copy: `id` may view the session's own id, which changes below
  std::string fresh = randomId();
  std::error_code failure;
  fs::rename(directoryOf(old_id), directoryOf(fresh), failure);
  if (failure) {
    if (error != nullptr) *error = "cannot move session files: " + failure.message();
    if (!holdsSession(directoryOf(old_id))) sessions_.erase(old_id);
    return nullptr;
  }
  auto it = sessions_.find(old_id);
  std::unique_ptr<SessionState> session = std::move(it->second);
  sessions_.erase(it);
  session->id = fresh;
  session->last_used = now;
  SessionState* rotated = session.get();
  sessions_[fresh] = std::move(session);
  return rotated;
}

bool SessionStore::holdsSession(const std::string& session_dir) {
  std::error_code failure;
  return fs::is_directory(fs::symlink_status(session_dir, failure)) &&
         fs::is_regular_file(fs::symlink_status(session_dir + "/" + kStateFile, failure));
}

bool SessionStore::takeFrom(std::string_view worker, std::string_view id) {
  const std::string worker_dir = state_dir_ + "/" + std::string(worker);
  const std::string uploads = worker_dir + "/uploads";
  std::error_code failure;
  if (!fs::is_directory(fs::symlink_status(worker_dir, failure)) || !fs::is_directory(fs::symlink_status(uploads, failure))) {
    return false;
  }
  const std::string source = uploads + "/" + std::string(id);
  if (!holdsSession(source)) return false;
  // One rename: the directory is either still there or wholly here, never half copied. It fails
  // when another worker took it first, and then the session is not ours.
  fs::rename(source, directoryOf(id), failure);
  return !failure;
}

SessionState* SessionStore::adopt(std::string_view id, std::string_view previous, WallClock::time_point now,
                                  std::string* error, std::string* source) {
  auto refuse = [&](std::string message) -> SessionState* {
    if (error != nullptr) *error = std::move(message);
    return nullptr;
  };
  if (!isValidId(id)) return refuse("not a session id of this app");
  if (!isValidWorkerName(previous)) return refuse("invalid previous worker");
  if (SessionState* known = find(id, now)) return known;
  const std::string target = directoryOf(id);
  if (holdsSession(target)) {
    // Ours on disk but not in memory (its state did not load before): try once more.
    if (!loadFromDisk(id, now)) return refuse("this worker's files of the session hold no readable session state");
    if (source != nullptr) *source = worker_;
    return find(id, now);
  }
  std::error_code failure;
  if (fs::exists(fs::symlink_status(target, failure))) fs::remove_all(target, failure);  // leftovers, see find()

  // The named worker first (it holds the files in the common case), then the others in name
  // order. Names come from the directory listing and pass isValidWorkerName: no "..", no "/".
  std::vector<std::string> candidates;
  if (previous != worker_) candidates.emplace_back(previous);
  std::vector<std::string> others;
  std::error_code listing;
  for (DirectoryEntry& entry : listDirectory(state_dir_, &listing)) {
    if (isValidWorkerName(entry.name) && entry.name != worker_ && entry.name != previous) {
      others.push_back(std::move(entry.name));
    }
  }
  std::sort(others.begin(), others.end());
  candidates.insert(candidates.end(), others.begin(), others.end());
  for (const std::string& worker : candidates) {
    if (!takeFrom(worker, id)) continue;
    if (!loadFromDisk(id, now)) return refuse("adopted files hold no readable session state");
    if (source != nullptr) *source = worker;
    return find(id, now);
  }
  return refuse("no files of this session on " + std::string(previous) + " or any other worker" +
                (listing ? " (the other workers could not all be listed: " + listing.message() + ")" : std::string()));
}

bool SessionStore::save(const SessionState& session, std::string* error) const {
  picojson::object object;
  object["id"] = picojson::value(session.id);
  object["csv_loaded"] = picojson::value(session.csv_loaded);
  object["shapefile_loaded"] = picojson::value(session.shapefile_loaded);
  object["analysis_complete"] = picojson::value(session.analysis_complete);
  picojson::array variables;
  for (const std::string& variable : session.variables_used) variables.emplace_back(variable);
  object["variables_used"] = picojson::value(std::move(variables));
  object["current_map_page"] = picojson::value(static_cast<double>(session.current_map_page));
  object["created_ms"] = picojson::value(toMs(session.created));
  object["last_used_ms"] = picojson::value(toMs(session.last_used));
  if (!writeFileAtomically(directoryOf(session.id) + "/" + kStateFile, picojson::value(object).serialize(true), error)) {
    return false;
  }
  ::unlink((directoryOf(session.id) + "/" + kViewFile).c_str());  // older than what session.json now says
  return true;
}

bool SessionStore::saveLazily(const SessionState& session, std::string* error) const {
  return writeDerivedFile(directoryOf(session.id) + "/" + kViewFile,
                          "{\"current_map_page\":" + std::to_string(session.current_map_page) + "}", error);
}

bool SessionStore::loadFromDisk(std::string_view id, WallClock::time_point now) {
  std::string text;
  if (!readWholeFile(directoryOf(id) + "/" + kStateFile, &text)) return false;
  picojson::value root;
  std::string parse_error = parseJsonDocument(text, &root);
  if (!parse_error.empty() || !root.is<picojson::object>()) return false;
  const picojson::object& object = root.get<picojson::object>();
  auto flag = [&](const char* name) {
    auto it = object.find(name);
    return it != object.end() && it->second.is<bool>() && it->second.get<bool>();
  };
  auto number = [&](const char* name, double fallback) {
    auto it = object.find(name);
    return it != object.end() && it->second.is<double>() ? it->second.get<double>() : fallback;
  };
  auto session = std::make_unique<SessionState>();
  session->id = std::string(id);
  session->csv_loaded = flag("csv_loaded");
  session->shapefile_loaded = flag("shapefile_loaded");
  session->analysis_complete = flag("analysis_complete");
  auto variables = object.find("variables_used");
  if (variables != object.end() && variables->second.is<picojson::array>()) {
    for (const picojson::value& variable : variables->second.get<picojson::array>()) {
      if (variable.is<std::string>()) session->variables_used.push_back(variable.get<std::string>());
    }
  }
  session->current_map_page = static_cast<int>(number("current_map_page", 0));
  std::string view_text;
  picojson::value view;
  std::string view_error = "missing";
  if (readWholeFile(directoryOf(id) + "/" + kViewFile, &view_text)) {
    view_error = parseJsonDocument(view_text, &view);
  }
  if (view_error.empty() && view.is<picojson::object>()) {
    auto page = view.get<picojson::object>().find("current_map_page");
    if (page != view.get<picojson::object>().end() && page->second.is<double>() &&
        std::isfinite(page->second.get<double>()) && std::fabs(page->second.get<double>()) < 1e6) {
      session->current_map_page = static_cast<int>(page->second.get<double>());
    }
  }
  session->created = fromMs(number("created_ms", toMs(now)));
  session->last_used = now;
  sessions_[std::string(id)] = std::move(session);
  return true;
}

void SessionStore::remove(std::string_view id_view) {
  if (!isValidId(id_view)) return;
  // A copy first: callers pass the session's own id, which the erase below frees.
  const std::string id(id_view);
  sessions_.erase(id);
  std::error_code ignored;
  fs::remove_all(directoryOf(id), ignored);
}

size_t SessionStore::recover(WallClock::time_point now, std::string* error) {
  size_t recovered = 0;
  std::error_code failure;
  for (const DirectoryEntry& entry : listDirectory(uploads_root_, &failure)) {
    if (entry.type != fs::file_type::directory || !isValidId(entry.name) || sessions_.count(entry.name) != 0) continue;
    if (loadFromDisk(entry.name, now)) ++recovered;
  }
  if (failure && error != nullptr) *error = "cannot list " + uploads_root_ + ": " + failure.message();
  return recovered;
}

size_t SessionStore::expireIdle(WallClock::time_point now) {
  std::vector<std::string> idle;
  for (const auto& [id, session] : sessions_) {
    if (now - session->last_used > idle_timeout_) idle.push_back(id);
  }
  for (const std::string& id : idle) remove(id);
  return idle.size();
}

}  // namespace stickyproxy::backend
