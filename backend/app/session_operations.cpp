#include "backend/app/session_operations.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "backend/analysis/analysis_csv.h"
#include "backend/analysis/vulnerability_analysis.h"
#include "proxy/net/background_job.h"
#include "backend/app/session_layout.h"
#include "backend/app/uploaded_data.h"
#include "proxy/net/file_util.h"
#include "proxy/routing/session_key.h"

namespace stickyproxy::backend {

namespace fs = std::filesystem;

namespace {

picojson::value stringArray(const std::vector<std::string>& items) {
  picojson::array array;
  for (const std::string& item : items) array.emplace_back(item);
  return picojson::value(std::move(array));
}

// Replaces directory `target` by `replacement` (both under the same file system): the old one is
// moved aside first so the new one appears with one rename.
bool swapDirectory(SessionOperations& operations, const std::string& replacement, const std::string& target,
                   std::string* error) {
  std::error_code failure;
  if (fs::exists(target, failure)) operations.discardDirectory(target);
  fs::rename(replacement, target, failure);
  if (failure) {
    *error = failure.message();
    return false;
  }
  return true;
}

// Writes `files` as new files into the fresh directory `dir` and makes them durable: one fsync
// per file and one of the directory, no temporary names (nobody reads `dir` until it is renamed
// into place whole). Runs off the loop; false with the failing step in `error`.
bool writeResultFiles(const std::string& dir, const std::vector<AnalysisFile>& files, std::string* error) {
  auto fail = [&](const std::string& path, std::string_view step) {
    *error = path + ": " + std::string(step) + ": " + errnoText(errno);
    return false;
  };
  for (const AnalysisFile& file : files) {
    const std::string path = joinPath(dir, file.filename);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(path, "create");
    const bool written = writeAllTo(fd, file.content) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    errno = err;
    if (!written) return fail(path, "write");
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return fail(dir, "open directory");
  const bool synced = ::fsync(dir_fd) == 0;
  const int err = errno;
  ::close(dir_fd);
  errno = err;
  return synced || fail(dir, "fsync directory");
}

// The answer to run_analysis for `analysis`.
Answer analysisAnswer(const AnalysisResult& analysis) {
  picojson::object fields;
  fields["message"] = picojson::value("Analysis complete: " + std::to_string(analysis.wardCount()) +
                                      " wards ranked with " + std::to_string(analysis.models.size()) +
                                      " composite models and PCA");
  fields["variables_used"] = stringArray(analysis.variables_used);
  fields["high_risk_wards"] = stringArray(analysis.high_risk_wards);
  fields["medium_risk_wards"] = stringArray(analysis.medium_risk_wards);
  fields["low_risk_wards"] = stringArray(analysis.low_risk_wards);
  fields["ward_count"] = picojson::value(static_cast<double>(analysis.wardCount()));
  fields["model_count"] = picojson::value(static_cast<double>(analysis.models.size()));
  return Answer::success(std::move(fields));
}

// About how many bytes `analysis` holds (vectors and strings; not allocator overhead).
size_t analysisBytes(const AnalysisResult& analysis) {
  auto strings = [](const std::vector<std::string>& texts) {
    size_t bytes = sizeof texts;
    for (const std::string& text : texts) bytes += sizeof text + text.capacity();
    return bytes;
  };
  size_t bytes = sizeof analysis + strings(analysis.ward_keys) + strings(analysis.ward_names) +
                 strings(analysis.skipped_columns) + strings(analysis.variables_used) +
                 strings(analysis.high_risk_wards) + strings(analysis.medium_risk_wards) +
                 strings(analysis.low_risk_wards);
  for (const ImputedColumn& column : analysis.imputed_columns) bytes += sizeof column + column.values.capacity() * 16;
  for (const auto& values : analysis.normalized) bytes += sizeof values + values.capacity() * sizeof(double);
  for (const CompositeModel& model : analysis.models) bytes += sizeof model + model.formula.capacity() + 64;
  bytes += analysis.model_scores.wardCount() * analysis.model_scores.modelCount() * sizeof(double);
  bytes += (analysis.median_scores.capacity() + analysis.pca.scores.capacity()) * sizeof(double);
  bytes += (analysis.overall_ranks.capacity() + analysis.pca_ranks.capacity()) * sizeof(size_t);
  for (const auto& loading : analysis.pca.loadings) bytes += sizeof loading + loading.capacity() * sizeof(double);
  return bytes;
}

}  // namespace

SessionOperations::SessionOperations(AppContext& app)
    : app_(app), staging_root_(joinPath(joinPath(app.options().state_dir, app.options().name), "staging")) {
  // Anything left here is from uploads a previous run of this worker never finished.
  std::error_code ignored;
  fs::remove_all(staging_root_, ignored);
  fs::create_directories(staging_root_, ignored);
}

std::string SessionOperations::newStagingDir(std::string* error) {
  std::string path = joinPath(staging_root_, newSessionKey());
  std::error_code failure;
  fs::create_directories(path, failure);
  if (failure) {
    *error = "cannot create " + path + ": " + failure.message();
    return {};
  }
  return path;
}

void SessionOperations::discardDirectory(const std::string& path) {
  std::error_code ignored;
  std::string aside = joinPath(staging_root_, "discarded-" + newSessionKey());
  fs::rename(path, aside, ignored);
  fs::remove_all(ignored ? path : aside, ignored);
}

void SessionOperations::noteLoaded(SessionState& session) {
  const size_t bytes = (session.data ? session.data->memoryBytes() : 0) +
                       (session.analysis ? analysisBytes(*session.analysis) : 0);
  if (size_t evicted = app_.sessions().noteLoaded(session, bytes); evicted > 0) {
    app_.log("memory budget: parsed data of " + std::to_string(evicted) + " idle sessions left memory (" +
             std::to_string(app_.sessions().loadedBytes() >> 20) + " MiB held)");
  }
}

std::string SessionOperations::resultsDir(const std::string& session_id) const {
  return joinPath(app_.sessions().directoryOf(session_id), kResultsDir);
}

void SessionOperations::commitUpload(const std::string& session_id, const std::string& staging_dir,
                                     AnswerCallback done) {
  auto data = std::make_shared<UploadedData>();
  auto status = std::make_shared<DataStatus>();
  UploadLimits limits = app_.options().upload;
  runInBackground(
      app_.loop(), [data, status, staging_dir, limits] { *status = loadUploadedData(staging_dir, limits, data.get()); },
      [this, data, status, session_id, staging_dir, done = std::move(done)] {
        if (!status->ok()) {
          discardDirectory(staging_dir);
          return done(app_.dataFailure(*status, "bad_upload", "Could not store the upload"));
        }
        std::string error;
        SessionState* session = app_.sessions().find(session_id, app_.now());
        if (session != nullptr) session = app_.sessions().rotate(session_id, app_.now(), &error);
        if (session == nullptr) {
          // The session went while the upload ran (adopted by another worker, cleared, expired,
          // rotated by a parallel upload). The data is good and the user sent it: it starts a
          // fresh session, whose id the answer's cookie carries. Refusing would only ask for
          // the same upload again, and a cookie that kept naming the lost session would be
          // refused for ever.
          app_.log("session " + shortKeyHash(session_id) + " went during an upload" +
                   (error.empty() ? std::string() : " (" + error + ")") + "; the upload starts a fresh session");
          error.clear();
          session = app_.sessions().create(app_.now(), &error);
        }
        if (session == nullptr) {
          discardDirectory(staging_dir);
          return done(app_.serverFailure("Could not store the upload", error));
        }
        const std::string directory = app_.sessions().directoryOf(session->id);
        if (!swapDirectory(*this, staging_dir, joinPath(directory, kDataDir), &error)) {
          discardDirectory(staging_dir);
          return done(app_.serverFailure("Could not store the upload", error));
        }
        discardDirectory(joinPath(directory, kResultsDir));
        session->csv_loaded = true;
        session->shapefile_loaded = data->has_shapes;
        session->analysis_complete = false;
        session->variables_used.clear();
        session->current_map_page = 0;
        session->data = data;
        session->analysis = nullptr;
        session->analysis_request.reset();
        session->rendered_for = nullptr;
        session->rendered_pages.clear();
        noteLoaded(*session);
        if (!app_.sessions().save(*session, &error)) app_.log("cannot save session state: " + error);

        picojson::object fields;
        fields["upload_type"] = picojson::value(data->has_shapes ? "csv_shapefile" : "csv_only");
        fields["session_id"] = picojson::value(session->id);
        fields["data_summary"] = picojson::value(data->summaryJson());
        std::string message = "Uploaded " + std::to_string(data->table.rowCount()) + " wards with " +
                              std::to_string(data->table.columnCount()) + " columns";
        if (data->has_shapes) {
          message += " and " + std::to_string(data->layer.size()) + " ward boundaries (" +
                     std::to_string(data->join.matchedCount()) + " matched)";
        }
        fields["message"] = picojson::value(message);
        done(Answer::success(std::move(fields)));
      });
}

void SessionOperations::withLoadedSession(const std::string& session_id, bool need_analysis, SessionCallback next) {
  SessionState* session = app_.sessions().find(session_id, app_.now());
  if (session == nullptr) return next(nullptr, std::nullopt);
  if (session->csv_loaded && !session->data) {
    auto data = std::make_shared<UploadedData>();
    auto status = std::make_shared<DataStatus>();
    std::string data_dir = joinPath(app_.sessions().directoryOf(session_id), kDataDir);
    UploadLimits limits = app_.options().upload;
    runInBackground(
        app_.loop(), [data, status, data_dir, limits] { *status = loadUploadedData(data_dir, limits, data.get()); },
        [this, data, status, data_dir, session_id, need_analysis, next = std::move(next)] {
          SessionState* found = app_.sessions().find(session_id, app_.now());
          if (found == nullptr) return next(nullptr, std::nullopt);
          if (!status->ok()) {
            // Data this app took in once and cannot read back is the server's failure, whatever the code.
            return next(found, app_.serverFailure("Could not reload this session's data",
                                                  data_dir + ": " + status->message()));
          }
          if (!found->data) {
            found->data = data;
            noteLoaded(*found);
          }
          withLoadedSession(session_id, need_analysis, next);
        });
    return;
  }
  if (need_analysis && session->analysis_complete && session->data && !session->analysis) {
    // The analysis is deterministic: running it again on the same data and variables gives the
    // result whose files are on disk, which is cheaper than parsing five CSVs back.
    auto data = session->data;
    AnalysisOptions options;
    options.selected_variables = session->variables_used;
    auto result = std::make_shared<std::optional<Expected<AnalysisResult>>>();
    runInBackground(
        app_.loop(), [data, options, result] { result->emplace(backend::runAnalysis(data->wards, options)); },
        [this, data, result, session_id, need_analysis, next = std::move(next)] {
          SessionState* found = app_.sessions().find(session_id, app_.now());
          if (found == nullptr) return next(nullptr, std::nullopt);
          if (!(*result)->ok()) {
            return next(found, app_.serverFailure("Could not rebuild this session's analysis", (*result)->error()));
          }
          if (found->holdsData(data) && !found->analysis) {
            found->analysis = std::make_shared<const AnalysisResult>(std::move(**result).value());
            noteLoaded(*found);
          }
          withLoadedSession(session_id, need_analysis, next);
        });
    return;
  }
  next(session, std::nullopt);
}

void SessionOperations::withAnalysedSession(const std::string& session_id, const AnswerCallback& done,
                                            AnalysedCallback next) {
  withLoadedSession(session_id, true, [done, next = std::move(next)](SessionState* session,
                                                                     std::optional<Answer> failure) {
    if (failure) return done(*failure);
    if (session == nullptr || !session->analysis) {
      return done(Answer::error(ErrorKind::kBadInput, std::string(kAnalysisFirstMessage)));
    }
    next(session->data, session->analysis);
  });
}

void SessionOperations::runAnalysis(const std::string& session_id, std::vector<std::string> variables,
                                    AnswerCallback done) {
  withLoadedSession(session_id, false, [this, session_id, variables = std::move(variables),
                                        done = std::move(done)](SessionState* session, std::optional<Answer> failure) {
    if (failure) return done(*failure);
    if (session == nullptr || !session->csv_loaded || !session->shapefile_loaded || !session->data) {
      return done(Answer::error(ErrorKind::kBadInput, std::string(kUploadBothFirstMessage)));
    }
    if (session->analysis_complete && session->analysis && session->analysis_request == variables) {
      return done(analysisAnswer(*session->analysis));  // the same data and request: the same result, already stored
    }
    std::string error;
    std::string staging = newStagingDir(&error);
    if (staging.empty()) return done(app_.serverFailure("Could not run the analysis", error));
    auto data = session->data;
    AnalysisOptions options;
    options.selected_variables = variables;
    auto result = std::make_shared<std::optional<Expected<AnalysisResult>>>();
    auto write_error = std::make_shared<std::string>();
    runInBackground(
        app_.loop(),
        [data, options, result, staging, write_error] {
          result->emplace(backend::runAnalysis(data->wards, options));
          const AnalysisResult* analysis = (*result)->valueIfOk();
          if (analysis == nullptr) return;
          writeResultFiles(staging, analysisFiles(*analysis), write_error.get());
        },
        [this, data, options, result, staging, write_error, session_id, done] {
          if (!(*result)->ok() || !write_error->empty()) {
            discardDirectory(staging);
            if (!write_error->empty()) return done(app_.serverFailure("Could not write the results", *write_error));
            return done(app_.dataFailure((*result)->status(), "analysis_input", "Could not run the analysis"));
          }
          SessionState* found = app_.sessions().find(session_id, app_.now());
          if (found == nullptr || !found->holdsData(data)) {
            discardDirectory(staging);
            return done(Answer::error(ErrorKind::kConflict,
                                      "This session's data changed while the analysis ran; run it again"));
          }
          std::string swap_error;
          if (!swapDirectory(*this, staging, resultsDir(session_id), &swap_error)) {
            discardDirectory(staging);
            return done(app_.serverFailure("Could not store the results", swap_error));
          }
          auto analysis = std::make_shared<const AnalysisResult>(std::move(**result).value());
          found->analysis = analysis;
          found->analysis_request = options.selected_variables;
          found->rendered_for = nullptr;
          found->rendered_pages.clear();
          noteLoaded(*found);
          found->analysis_complete = true;
          found->variables_used = analysis->variables_used;
          found->current_map_page = 0;
          std::string save_error;
          if (!app_.sessions().save(*found, &save_error)) app_.log("cannot save session state: " + save_error);
          done(analysisAnswer(*analysis));
        });
  });
}

}  // namespace stickyproxy::backend
