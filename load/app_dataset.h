// The files a simulated user uploads (stickyproxy-gendata's wards.csv and wards_shapefile.zip),
// read once and shared by every user, with what their uploads and downloads are checked against.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "proxy/net/bytes.h"

namespace stickyproxy::load {

// The page (backend/web/index.html) uploads files over kChunkThreshold in pieces of kChunkSize.
inline constexpr size_t kChunkThreshold = 5 * 1024 * 1024;
inline constexpr size_t kChunkSize = 2 * 1024 * 1024;

struct DataFile {
  std::string name;        // as the browser sends it
  std::string field;       // the whole upload's form field
  std::string file_type;   // the chunked upload's file_type
  std::string content_type;
  Bytes content;
};

class AppDataset {
 public:
  // Reads DIR/wards.csv and DIR/wards_shapefile.zip; nullopt with `error` set when it cannot.
  static std::optional<AppDataset> load(const std::string& dir, std::string* error);

  const DataFile& csv() const { return csv_; }
  const DataFile& shapefile() const { return shapefile_; }
  size_t wards() const { return ward_codes_.size(); }
  // True when the page would upload these files in chunks.
  bool chunked() const { return csv_.content.size > kChunkThreshold || shapefile_.content.size > kChunkThreshold; }

  // The whole upload's body: both files as multipart/form-data under `boundary`, as three pieces
  // (the shared file bytes are not copied).
  std::vector<Bytes> wholeBody(std::string_view boundary) const;
  // How many chunks `file` is cut into, and one chunk request's body.
  static size_t chunkCount(const DataFile& file);
  static std::vector<Bytes> chunkBody(std::string_view boundary, std::string_view upload_id, const DataFile& file,
                                      size_t index);

  // Checks a downloaded per-ward result CSV (WardName, WardCode, ...): one row per uploaded ward,
  // every uploaded WardCode present. Returns an empty string when it holds, else what is wrong.
  std::string checkWardRows(std::string_view csv) const;

 private:
  DataFile csv_;
  DataFile shapefile_;
  std::unordered_set<std::string> ward_codes_;
};

// The first `count` fields of one RFC 4180 record starting at `*pos`; advances `*pos` past it.
// False at the end of the text.
bool readCsvRecord(std::string_view text, size_t* pos, size_t count, std::vector<std::string>* fields);

}  // namespace stickyproxy::load
