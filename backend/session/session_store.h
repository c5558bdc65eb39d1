// The bundled app's sessions, kept per worker on purpose (as the real app kept them): flags in
// this process's memory, files under this worker's own root. That is the state the proxy's
// stickiness protects.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stickyproxy::backend {

struct UploadedData;
struct AnalysisResult;

using WallClock = std::chrono::system_clock;

struct SessionState {
  std::string id;
  bool csv_loaded = false;
  bool shapefile_loaded = false;
  bool analysis_complete = false;
  std::vector<std::string> variables_used;
  int current_map_page = 0;
  WallClock::time_point created;
  WallClock::time_point last_used;
  // The parsed upload and the last analysis, cached in memory. Null until first needed after a
  // restart or an adoption (they are rebuilt from the session's files); never saved.
  std::shared_ptr<const UploadedData> data;
  std::shared_ptr<const AnalysisResult> analysis;
};

// Sessions of one worker. Session directories are <uploads_root>/<id>/ where
// uploads_root = <state_dir>/<worker>/uploads. Not thread-safe: one loop thread.
class SessionStore {
 public:
  // `state_dir`: the proxy's state directory; `worker`: this worker's name. Sessions idle
  // longer than `idle_timeout` are expired by expireIdle().
  SessionStore(std::string state_dir, std::string worker, std::chrono::milliseconds idle_timeout);

  // True for ids this app mints: 32 lowercase hex characters. Anything else is never a path.
  static bool isValidId(std::string_view id);
  // True for worker names the proxy accepts ([A-Za-z0-9_-]{1,32}).
  static bool isValidWorkerName(std::string_view name);

  // A new session with a fresh random id and an empty directory. nullptr (with `error`) when
  // the directory cannot be made.
  SessionState* create(WallClock::time_point now, std::string* error);
  // The session `id` if this worker knows it (validated first); refreshes last_used.
  SessionState* find(std::string_view id, WallClock::time_point now);
  // Gives session `id` a new id, moving its directory (the real app minted a new id on every
  // upload). The old id is unknown afterwards. nullptr when `id` is unknown or the move fails.
  SessionState* rotate(std::string_view id, WallClock::time_point now, std::string* error);
  // Takes over session `id` from worker `previous` after the proxy re-pinned it here: its
  // directory is renamed (never copied) from the previous worker's root into ours and its
  // state rebuilt from the files. nullptr with `error` when there is nothing to adopt.
  SessionState* adopt(std::string_view id, std::string_view previous, WallClock::time_point now, std::string* error);
  // Writes the session's flags to <dir>/session.json atomically.
  bool save(const SessionState& session, std::string* error) const;
  // Forgets the session and removes its directory. `id` may be the session's own id.
  void remove(std::string_view id);

  // Loads the sessions found on disk (a restarted worker keeps its users). Returns how many.
  size_t recover(WallClock::time_point now);
  // Removes sessions idle longer than the idle timeout, with their files. Returns how many.
  size_t expireIdle(WallClock::time_point now);

  // <uploads_root>/<id> for a valid id.
  std::string directoryOf(std::string_view id) const;
  const std::string& uploadsRoot() const { return uploads_root_; }
  size_t size() const { return sessions_.size(); }

 private:
  bool loadFromDisk(std::string_view id, WallClock::time_point now);

  std::string state_dir_;
  std::string worker_;
  std::string uploads_root_;
  std::chrono::milliseconds idle_timeout_;
  std::map<std::string, std::unique_ptr<SessionState>, std::less<>> sessions_;
};

}  // namespace stickyproxy::backend
