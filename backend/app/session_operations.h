// What the app does to a session, apart from HTTP: taking in an upload, loading a session's
// files back into memory, running the analysis. Routes and the chat assistant both call these.
//
// Every operation names its session by id and answers through a callback on the loop thread,
// because slow steps run in the background and the session may be rotated, cleared, expired or
// adopted by another worker meanwhile: the callback re-finds it, and an operation whose inputs
// changed under it refuses (409) rather than store stale results. An upload is the exception:
// its inputs are the user's files, so it is never refused for a session that went.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/app/app_context.h"

namespace stickyproxy::backend {

inline constexpr std::string_view kUploadBothFirstMessage =
    "Please upload both CSV and shapefile data before running analysis";
inline constexpr std::string_view kAnalysisFirstMessage =
    "Please run the analysis first: no analysis results in this session yet";

class SessionOperations {
 public:
  using AnswerCallback = std::function<void(Answer)>;
  // `session` is the re-found session (nullptr when it is gone); `failure` is set when its files
  // could not be loaded.
  using SessionCallback = std::function<void(SessionState* session, std::optional<Answer> failure)>;

  explicit SessionOperations(AppContext& app);

  // A new, empty directory for an incoming upload: <state_dir>/<worker>/staging/<random>.
  // Empty (with `error`) when it cannot be made.
  std::string newStagingDir(std::string* error);
  // Removes a directory tree without blocking on it being in use: renames it aside first.
  void discardDirectory(const std::string& path);

  // Checks the files in `staging_dir` (raw_data.csv, optional shapefile.zip, upload.json) in
  // the background. Good data replaces the session's data: the session gets a new id (as the
  // real app minted one per upload), its old results go, and the answer is the upload answer
  // ({upload_type, session_id, data_summary, message}). When the session is gone by then (or
  // cannot be rotated), the data goes into a fresh session instead: the answer is the same,
  // with the fresh id. Bad data gets its 4xx with the data layer's message (AppContext::
  // dataFailure) and leaves the session as it was; a file the server cannot read or move gets a
  // plain 500. `staging_dir` is consumed either way.
  void commitUpload(const std::string& session_id, const std::string& staging_dir, AnswerCallback done);

  // Makes sure the session's parsed data (and, with `need_analysis`, its last analysis) are in
  // memory, rebuilding them from its files after a restart or an adoption, then calls `next`.
  void withLoadedSession(const std::string& session_id, bool need_analysis, SessionCallback next);

  // withLoadedSession() for operations that need an analysis: calls `next` with the session's
  // data and last analysis, or answers `done` itself (a load failure, or 400
  // kAnalysisFirstMessage when the session is gone or has no analysis yet).
  using AnalysedCallback = std::function<void(std::shared_ptr<const UploadedData> data,
                                              std::shared_ptr<const AnalysisResult> analysis)>;
  void withAnalysedSession(const std::string& session_id, const AnswerCallback& done, AnalysedCallback next);

  // Runs the analysis on the session's data with `variables` (empty: the default set), writes
  // the result CSVs into results/ (replacing earlier results, maps and reports) and answers
  // {message, variables_used, high_risk_wards, medium_risk_wards, low_risk_wards, ward_count,
  // model_count}; 400 kUploadBothFirstMessage when data is missing.
  void runAnalysis(const std::string& session_id, std::vector<std::string> variables, AnswerCallback done);

  // <session dir>/results
  std::string resultsDir(const std::string& session_id) const;

  // Counts what `session`'s data and analysis cost against the memory budget, evicting other
  // sessions' parsed data when it is over (SessionStore::noteLoaded). Call whenever either changes.
  void noteLoaded(SessionState& session);

 private:
  AppContext& app_;
  std::string staging_root_;
};

}  // namespace stickyproxy::backend
