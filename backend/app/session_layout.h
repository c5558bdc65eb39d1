// Where a session's files live inside its directory <state_dir>/<worker>/uploads/<session_id>/:
//
//   session.json           flags (SessionStore)
//   data/raw_data.csv      the uploaded CSV, as sent
//   data/shapefile.zip     the uploaded zip, as sent; extracted into data/shapefile/
//   data/upload.json       the file names the user uploaded, for display only
//   results/               analysis CSVs, map pages, reports: everything /export lists
//   chunks/<upload_id>/    parts of a chunked upload until /upload/finalize
//   staging-*/             an upload being checked; renamed to data/ when it is good
//
// Keeping every file of a session under its one directory is what lets a worker adopt a
// session with a single rename.
#pragma once

#include <string>
#include <string_view>

namespace stickyproxy::backend {

inline constexpr std::string_view kDataDir = "data";
inline constexpr std::string_view kResultsDir = "results";
inline constexpr std::string_view kChunksDir = "chunks";
inline constexpr std::string_view kCsvFile = "raw_data.csv";
inline constexpr std::string_view kShapefileZip = "shapefile.zip";
inline constexpr std::string_view kShapefileDir = "shapefile";
inline constexpr std::string_view kUploadMetaFile = "upload.json";

// True for a file name a request may name: 1-128 characters of [A-Za-z0-9_.-], starting with a
// letter or digit, no "..". Names that pass cannot leave the directory they are looked up in.
bool isSafeFileName(std::string_view name);

// True for a client-made chunked upload id: 8-64 characters of [A-Za-z0-9_-].
bool isValidUploadId(std::string_view id);

// "<a>/<b>"
std::string joinPath(std::string_view a, std::string_view b);

}  // namespace stickyproxy::backend
