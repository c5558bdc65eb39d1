#include "backend/app/upload_routes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "proxy/net/background_job.h"
#include "backend/app/exchange_io.h"
#include "backend/app/multipart_receiver.h"
#include "backend/app/session_layout.h"
#include "backend/data/text_util.h"
#include "backend/session/derived_file.h"
#include "backend/session/directory_listing.h"
#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

namespace fs = std::filesystem;

namespace {

bool hasExtension(std::string_view filename, std::string_view extension) {
  return filename.size() > extension.size() &&
         lowerAscii(filename.substr(filename.size() - extension.size())) == extension;
}

// A non-negative integer field, or nullopt.
std::optional<uint64_t> parseCount(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<uint64_t> countMember(const picojson::object& object, std::string_view key) {
  auto it = object.find(std::string(key));
  if (it == object.end()) return std::nullopt;
  if (it->second.is<double>()) {
    double value = it->second.get<double>();
    if (value < 0 || value > 1e9 || value != static_cast<double>(static_cast<uint64_t>(value))) return std::nullopt;
    return static_cast<uint64_t>(value);
  }
  if (it->second.is<std::string>()) return parseCount(it->second.get<std::string>());
  return std::nullopt;
}

bool writeUploadMeta(const std::string& dir, const std::string& csv_name, const std::string& zip_name,
                     std::string* error) {
  picojson::object meta;
  meta["csv_filename"] = picojson::value(csv_name);
  meta["shapefile_filename"] = picojson::value(zip_name);
  // Display names only, next to files the receiver writes without fsync: flushing this one alone
  // would buy no durability, only two fsyncs per upload.
  return writeDerivedFile(joinPath(dir, kUploadMetaFile), picojson::value(meta).serialize(), error);
}

std::string chunkPath(const std::string& chunk_dir, std::string_view file_type, uint64_t index) {
  return joinPath(chunk_dir, std::string(file_type) + "." + std::to_string(index));
}

constexpr const char* kAssembleFailed = "Could not assemble the upload";

// Appends chunk files 0..count-1 to `dest`, failing past `max_bytes`. Runs off the loop: the
// failure is returned, never answered or logged here.
bool assembleChunks(const std::string& chunk_dir, std::string_view file_type, uint64_t count, uint64_t max_bytes,
                    const std::string& dest, AppError* error) {
  FILE* out = std::fopen(dest.c_str(), "wbe");
  if (out == nullptr) {
    *error = {ErrorKind::kServerIo, kAssembleFailed, "cannot create " + dest + ": " + errnoText(errno)};
    return false;
  }
  uint64_t total = 0;
  std::string buffer(1 << 16, '\0');
  bool ok = true;
  for (uint64_t index = 0; ok && index < count; ++index) {
    FILE* in = std::fopen(chunkPath(chunk_dir, file_type, index).c_str(), "rbe");
    if (in == nullptr) {
      *error = {ErrorKind::kBadInput, "Missing chunk " + std::to_string(index) + " for " + std::string(file_type), {}};
      ok = false;
      break;
    }
    size_t n;
    while (ok && (n = std::fread(buffer.data(), 1, buffer.size(), in)) > 0) {
      total += n;
      if (total > max_bytes) {
        *error = {ErrorKind::kTooLarge,
                  "File too large: the " + std::string(file_type) + " file is over " +
                      std::to_string(max_bytes >> 20) + " MB",
                  {}};
        ok = false;
      } else if (std::fwrite(buffer.data(), 1, n, out) != n) {
        *error = {ErrorKind::kServerIo, kAssembleFailed, "cannot write " + dest + ": " + errnoText(errno)};
        ok = false;
      }
    }
    std::fclose(in);
  }
  if (std::fclose(out) != 0 && ok) {
    *error = {ErrorKind::kServerIo, kAssembleFailed, "cannot write " + dest + ": " + errnoText(errno)};
    ok = false;
  }
  return ok;
}

}  // namespace

std::string UploadRoutes::boundaryOrReject(const ServerExchangePtr& exchange) {
  const std::string* type = exchange->request().headers.find("Content-Type");
  std::optional<std::string> boundary = type ? MultipartParser::boundaryOf(*type) : std::nullopt;
  if (!boundary) {
    app_.noteRejected("not_multipart", std::string(exchange->request().path()));
    app_.respondError(exchange, ErrorKind::kBadInput, "Expected a multipart/form-data upload");
    return {};
  }
  return *boundary;
}

Answer UploadRoutes::refusedForm(const ReceivedForm& form, std::string_view reason) {
  if (form.error.kind != ErrorKind::kServerIo) {
    app_.noteRejected(form.error.kind == ErrorKind::kTooLarge ? "upload_too_large" : reason, form.error.message);
  }
  return app_.failure(form.error);
}

void UploadRoutes::answerUpload(const std::weak_ptr<ServerExchange>& exchange, const Answer& answer) {
  const SessionState* session = nullptr;
  auto id = answer.body.find("session_id");
  if (answer.ok() && id != answer.body.end() && id->second.is<std::string>()) {
    session = app_.sessions().find(id->second.get<std::string>(), app_.now());
  }
  app_.respond(exchange, answer, session);
}

void UploadRoutes::uploadBothFiles(const ServerExchangePtr& exchange) {
  std::string boundary = boundaryOrReject(exchange);
  if (boundary.empty()) return;
  std::string error;
  SessionState* session = app_.sessionOrCreate(exchange->request(), &error);
  std::string staging = session ? operations_.newStagingDir(&error) : std::string();
  if (staging.empty()) return app_.respond(exchange, app_.serverFailure("Could not start the upload", error));
  const UploadLimits limits = app_.options().upload;
  auto route = [staging, limits](const MultipartParser::Part& part, const auto&, AppError* reject) -> FileTarget {
    reject->kind = ErrorKind::kBadInput;
    const std::string& filename = *part.filename;
    if (part.name == "csv_file") {
      if (!hasExtension(filename, ".csv")) {
        reject->message = "Invalid file type for csv_file: expected a .csv file";
        return {};
      }
      return {limits.max_csv_bytes, joinPath(staging, kCsvFile)};
    }
    if (part.name == "shapefile") {
      if (!hasExtension(filename, ".zip")) {
        reject->message = "Invalid file type for shapefile: expected a .zip file holding .shp, .shx and .dbf";
        return {};
      }
      return {limits.max_zip_bytes, joinPath(staging, kShapefileZip)};
    }
    reject->message = "Unexpected file field '" + part.name + "' (expected csv_file and shapefile)";
    return {};
  };
  std::string session_id = session->id;
  std::weak_ptr<ServerExchange> weak = exchange;
  receiveMultipart(exchange, boundary, route, [this, weak, staging, session_id](ReceivedForm form) {
    auto live = weak.lock();
    if (!form.ok) {
      operations_.discardDirectory(staging);
      if (form.aborted || !live) return;
      return app_.respond(live, refusedForm(form, "bad_upload"));
    }
    auto csv = form.files.find("csv_file");
    auto zip = form.files.find("shapefile");
    std::string meta_error;
    if (csv == form.files.end() || csv->second.bytes == 0) {
      operations_.discardDirectory(staging);
      app_.noteRejected("bad_upload", "no csv_file");
      if (live) app_.respondError(live, ErrorKind::kBadInput, "No CSV file uploaded (field csv_file)");
      return;
    }
    if (zip != form.files.end() && zip->second.bytes == 0) ::unlink(zip->second.path.c_str());
    std::string zip_name = zip != form.files.end() && zip->second.bytes > 0 ? zip->second.filename : std::string();
    if (!writeUploadMeta(staging, csv->second.filename, zip_name, &meta_error)) {
      operations_.discardDirectory(staging);
      Answer failed = app_.serverFailure("Could not store the upload", meta_error);
      if (live) app_.respond(live, failed);
      return;
    }
    operations_.commitUpload(session_id, staging, [this, weak](Answer answer) {
      answerUpload(weak, answer);
    });
  });
}

void UploadRoutes::uploadChunk(const ServerExchangePtr& exchange) {
  std::string boundary = boundaryOrReject(exchange);
  if (boundary.empty()) return;
  std::string error;
  SessionState* session = app_.sessionOrCreate(exchange->request(), &error);
  if (session == nullptr) return app_.respond(exchange, app_.serverFailure("Could not start the upload", error));
  const std::string chunks_root = joinPath(app_.sessions().directoryOf(session->id), kChunksDir);
  const BackendOptions& options = app_.options();
  const uint64_t max_chunk = options.max_chunk_bytes;
  const uint64_t max_chunks = options.max_chunks;
  auto route = [chunks_root, max_chunk, max_chunks](const MultipartParser::Part& part, const auto& fields,
                                                    AppError* reject) -> FileTarget {
    reject->kind = ErrorKind::kBadInput;
    if (part.name != "chunk") {
      reject->message = "Unexpected file field '" + part.name + "' (expected chunk)";
      return {};
    }
    auto field = [&](const char* name) -> std::string_view {
      auto it = fields.find(name);
      return it == fields.end() ? std::string_view() : std::string_view(it->second);
    };
    std::string_view upload_id = field("upload_id");
    std::string_view file_type = field("file_type");
    std::optional<uint64_t> index = parseCount(field("chunk_index"));
    std::optional<uint64_t> total = parseCount(field("total_chunks"));
    if (!isValidUploadId(upload_id)) {
      reject->message = "Missing or invalid upload_id (8-64 characters of letters, digits, '-' and '_'), sent before chunk";
    } else if (file_type != "csv" && file_type != "shapefile") {
      reject->message = "file_type must be csv or shapefile";
    } else if (!index || !total || *total == 0 || *total > max_chunks || *index >= *total) {
      reject->message = "chunk_index and total_chunks must be numbers with 0 <= chunk_index < total_chunks <= " +
                        std::to_string(max_chunks);
    }
    if (!reject->message.empty()) return {};
    // One level at a time, never the session directory itself: if another worker adopted the
    // session since the head arrived, a recursive mkdir would recreate its directory here, and
    // the chunk would land in a copy nobody finalizes.
    std::string dir = joinPath(chunks_root, upload_id);
    std::error_code failure;
    fs::create_directory(chunks_root, failure);
    if (!failure) fs::create_directory(dir, failure);
    if (failure == std::errc::no_such_file_or_directory) {
      *reject = {ErrorKind::kConflict,
                 "This session moved to another worker during the upload; please send the chunk again", {}};
      return {};
    }
    if (failure) {
      *reject = {ErrorKind::kServerIo, "Could not store the chunk", "cannot create " + dir + ": " + failure.message()};
      return {};
    }
    return {max_chunk, chunkPath(dir, file_type, *index)};
  };
  std::string session_id = session->id;
  std::weak_ptr<ServerExchange> weak = exchange;
  receiveMultipart(exchange, boundary, route, [this, weak, session_id, chunks_root](ReceivedForm form) {
    auto live = weak.lock();
    if (!live || form.aborted) return;
    if (!form.ok) return app_.respond(live, refusedForm(form, "bad_chunk"));
    if (form.files.count("chunk") == 0) {
      app_.noteRejected("bad_chunk", "no chunk part");
      return app_.respondError(live, ErrorKind::kBadInput, "No chunk uploaded (file field chunk)");
    }
    const std::string& upload_id = form.fields["upload_id"];
    const std::string& file_type = form.fields["file_type"];
    // The count is for the client's progress display: a listing that fails counts what it read.
    size_t received = 0;
    std::error_code listing;
    const std::string chunk_dir = joinPath(chunks_root, upload_id);
    for (const DirectoryEntry& entry : listDirectory(chunk_dir, &listing)) {
      if (entry.name.starts_with(file_type + ".") && !entry.name.ends_with(".tmp")) ++received;
    }
    if (listing) app_.noteServerFailure("cannot count the chunks received", chunk_dir + ": " + listing.message());
    picojson::object fields;
    fields["upload_id"] = picojson::value(upload_id);
    fields["file_type"] = picojson::value(file_type);
    fields["chunk_index"] = picojson::value(static_cast<double>(*parseCount(form.fields["chunk_index"])));
    fields["received_chunks"] = picojson::value(static_cast<double>(received));
    app_.respond(live, Answer::success(std::move(fields)), app_.sessions().find(session_id, app_.now()));
  });
}

void UploadRoutes::finalizeUpload(const ServerExchangePtr& exchange) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    std::string upload_id = stringMember(body, "upload_id");
    std::string csv_name = stringMember(body, "csv_filename");
    std::string zip_name = stringMember(body, "shapefile_filename");
    std::optional<uint64_t> csv_chunks = countMember(body, "csv_total_chunks");
    std::optional<uint64_t> zip_chunks = countMember(body, "shp_total_chunks");
    const uint64_t max_chunks = app_.options().max_chunks;
    std::string problem;
    if (!isValidUploadId(upload_id)) {
      problem = "Missing or invalid upload_id";
    } else if (!hasExtension(csv_name, ".csv")) {
      problem = "Invalid file type for csv_filename: expected a .csv file";
    } else if (!zip_name.empty() && !hasExtension(zip_name, ".zip")) {
      problem = "Invalid file type for shapefile_filename: expected a .zip file";
    } else if (!csv_chunks || *csv_chunks == 0 || *csv_chunks > max_chunks) {
      problem = "csv_total_chunks must be a number from 1 to " + std::to_string(max_chunks);
    } else if (!zip_name.empty() && (!zip_chunks || *zip_chunks == 0 || *zip_chunks > max_chunks)) {
      problem = "shp_total_chunks must be a number from 1 to " + std::to_string(max_chunks);
    }
    if (!problem.empty()) {
      app_.noteRejected("bad_finalize", problem);
      return app_.respondError(live, ErrorKind::kBadInput, problem);
    }
    const uint64_t zip_count = zip_name.empty() ? 0 : *zip_chunks;
    // A worker that never saw this session has none of its chunks: the real app's failure.
    SessionState* session = app_.sessionOf(live->request());
    std::string chunk_dir = session ? joinPath(joinPath(app_.sessions().directoryOf(session->id), kChunksDir), upload_id)
                                    : std::string();
    auto missing = [&](std::string_view file_type, uint64_t count) -> std::optional<uint64_t> {
      for (uint64_t index = 0; index < count; ++index) {
        struct stat info {};
        if (chunk_dir.empty() || ::stat(chunkPath(chunk_dir, file_type, index).c_str(), &info) != 0) return index;
      }
      return std::nullopt;
    };
    for (auto [file_type, count] : {std::pair<std::string_view, uint64_t>{"csv", *csv_chunks}, {"shapefile", zip_count}}) {
      if (auto index = missing(file_type, count)) {
        std::string message = "Missing chunk " + std::to_string(*index) + " for " + std::string(file_type);
        app_.noteRejected("missing_chunk", message);
        return app_.respondError(live, ErrorKind::kBadInput, message);
      }
    }
    std::string error;
    std::string staging = operations_.newStagingDir(&error);
    if (staging.empty() || !writeUploadMeta(staging, csv_name, zip_name, &error)) {
      if (!staging.empty()) operations_.discardDirectory(staging);
      return app_.respond(live, app_.serverFailure(kAssembleFailed, error));
    }
    const UploadLimits limits = app_.options().upload;
    const uint64_t csv_count = *csv_chunks;
    auto assemble_error = std::make_shared<AppError>();  // its message stays empty when the chunks assemble
    std::string session_id = session->id;
    runInBackground(
        app_.loop(),
        [chunk_dir, staging, csv_count, zip_count, limits, assemble_error] {
          if (!assembleChunks(chunk_dir, "csv", csv_count, limits.max_csv_bytes, joinPath(staging, kCsvFile),
                              assemble_error.get())) {
            return;
          }
          if (zip_count > 0) {
            assembleChunks(chunk_dir, "shapefile", zip_count, limits.max_zip_bytes, joinPath(staging, kShapefileZip),
                           assemble_error.get());
          }
        },
        [this, weak, chunk_dir, staging, session_id, upload_id, assemble_error] {
          if (!assemble_error->message.empty()) {
            operations_.discardDirectory(staging);
            if (assemble_error->kind != ErrorKind::kServerIo) {
              app_.noteRejected("bad_finalize", assemble_error->message);
            }
            app_.respond(weak, app_.failure(*assemble_error));
            return;
          }
          // The chunks stay until the upload is committed: a worker killed before then leaves them
          // in the session's directory, so the same finalize, replayed on the worker that adopts
          // the session, finds them there.
          operations_.commitUpload(session_id, staging, [this, weak, chunk_dir, upload_id](Answer answer) {
            operations_.discardDirectory(chunk_dir);
            auto committed_in = answer.body.find("session_id");
            if (answer.ok() && committed_in != answer.body.end() &&
                committed_in->second.is<std::string>()) {
              // The commit gave the session a new id, and its directory (chunks included) a new name.
              operations_.discardDirectory(joinPath(
                  joinPath(app_.sessions().directoryOf(committed_in->second.get<std::string>()), kChunksDir),
                  upload_id));
            }
            answerUpload(weak, answer);
          });
        });
  });
}

}  // namespace stickyproxy::backend
