// The bundled app's sessions, kept per worker on purpose (as the real app kept them): flags in
// this process's memory, files under this worker's own root. That is the state the proxy's
// stickiness protects.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
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
  // The selected_variables `analysis` was run with, as asked (empty: the default set); unknown
  // for an analysis rebuilt after a restart. The same request on the same data is answered from
  // `analysis` instead of running it again.
  std::optional<std::vector<std::string>> analysis_request;
  // Map pages already drawn into results/ from `rendered_for` (file names): asked again while
  // `analysis` is still that one, they are answered without drawing or writing anything.
  std::shared_ptr<const AnalysisResult> rendered_for;
  std::set<std::string, std::less<>> rendered_pages;
  // What `data` and `analysis` cost in memory, as the app last counted it (SessionStore::noteLoaded).
  size_t loaded_bytes = 0;

  // True when `held` is this session's data: the one it holds, or the one the memory budget
  // evicted since (SessionStore::noteLoaded), which is then taken back. An operation that
  // captured the data before running off the loop asks this instead of comparing pointers, so
  // an eviction meanwhile does not look like a new upload.
  bool holdsData(const std::shared_ptr<const UploadedData>& held);
  // The same for the analysis.
  bool holdsAnalysis(const std::shared_ptr<const AnalysisResult>& held);

  // Identities (never dereferenced) of the data and analysis the budget last evicted.
  const void* evicted_data = nullptr;
  const void* evicted_analysis = nullptr;
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
  // The session `id` if this worker knows it (validated first) and its directory here still
  // holds its state file; refreshes last_used. A session whose files are gone (another worker
  // adopted them while this one was hung, stopped or simply kept running) is forgotten here,
  // with whatever was recreated under its directory since, and is unknown from then on: the
  // caller adopts it or starts afresh, never serves a copy whose files are elsewhere.
  SessionState* find(std::string_view id, WallClock::time_point now);
  // Gives session `id` a new id, moving its directory (the real app minted a new id on every
  // upload). The old id is unknown afterwards. nullptr when `id` is unknown (see find()) or
  // the move fails; a session whose directory vanished under the move is forgotten. Its
  // session.json moves with it and stays valid (a session's id is its directory's name), so
  // nothing is written here: the caller saves once it has changed what it rotated for.
  SessionState* rotate(std::string_view id, WallClock::time_point now, std::string* error);
  // Takes over session `id` after the proxy announced that it re-pinned the session here from
  // worker `previous`: its directory is renamed (never copied) into our root and its state
  // rebuilt from the files. The files are looked for on `previous` first, then on every other
  // sibling worker under the same state_dir, because the announcement can name a worker that
  // never held them (a session moved twice before its next request, or back and forth).
  // Only directories are followed, never symlinks: <state_dir>/<name>/uploads/<id> with
  // `name` a valid worker name other than ours and <id>/session.json present. A session this
  // worker already holds (find()) is returned as it is. nullptr with `error` when `id` or
  // `previous` is malformed or no worker has the files; `source` (optional) gets the worker
  // they came from.
  //
  // Only an announcement may move files between workers: without it, a worker that is alive
  // and serving the session could lose its directory under a request it is still answering.
  // The proxy announces only after it stopped routing the session to the old worker.
  SessionState* adopt(std::string_view id, std::string_view previous, WallClock::time_point now, std::string* error,
                      std::string* source = nullptr);
  // Writes the session's flags to <dir>/session.json atomically and durably (fsync), and drops
  // what saveLazily() wrote: call it whenever flags that matter change (upload, analysis).
  bool save(const SessionState& session, std::string* error) const;
  // Writes only current_map_page, to <dir>/view.json, without fsync: a step through the
  // composite pages costs no disk flush on the loop. After a machine crash the file may be old
  // or empty; loading then takes session.json's page, and session.json is never touched here,
  // so the flags that matter stay as durable as save() left them.
  bool saveLazily(const SessionState& session, std::string* error) const;
  // Forgets the session and removes its directory. `id` may be the session's own id.
  void remove(std::string_view id);

  // The most parsed data (SessionState::data and analysis, by loaded_bytes) this worker keeps in
  // memory; 0 means no limit.
  void setMemoryBudget(size_t bytes) { memory_budget_ = bytes; }
  size_t memoryBudget() const { return memory_budget_; }
  // Records that `session` now holds `bytes` of parsed data, then, while the sessions together
  // hold more than the budget, drops the parsed data of the least recently used other sessions
  // (their files stay; SessionOperations::withLoadedSession reloads them on their next request).
  // `session` itself is never evicted here, even when it alone is over the budget. Returns how
  // many sessions were evicted.
  size_t noteLoaded(SessionState& session, size_t bytes);
  // Parsed data held by all sessions, and how many evictions the budget made so far.
  size_t loadedBytes() const;
  uint64_t evictions() const { return evictions_; }

  // Loads the sessions found on disk (a restarted worker keeps its users). Returns how many;
  // when the root could not be listed (wholly or in part), `error` (optional) says why.
  size_t recover(WallClock::time_point now, std::string* error = nullptr);
  // Removes sessions idle longer than the idle timeout, with their files. Returns how many.
  size_t expireIdle(WallClock::time_point now);

  // <uploads_root>/<id> for a valid id.
  std::string directoryOf(std::string_view id) const;
  const std::string& uploadsRoot() const { return uploads_root_; }
  size_t size() const { return sessions_.size(); }

 private:
  bool loadFromDisk(std::string_view id, WallClock::time_point now);
  // True when <root>/<id>/session.json is a regular file and neither <root>/<id> nor it is a
  // symlink.
  static bool holdsSession(const std::string& session_dir);
  // Renames <state_dir>/<worker>/uploads/<id> into our root when it holds a session. False
  // when it does not, or another worker took it first.
  bool takeFrom(std::string_view worker, std::string_view id);

  std::string state_dir_;
  std::string worker_;
  std::string uploads_root_;
  std::chrono::milliseconds idle_timeout_;
  std::map<std::string, std::unique_ptr<SessionState>, std::less<>> sessions_;
  size_t memory_budget_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace stickyproxy::backend
