// The outcome of reading or writing user data (CSV tables, zipped shapefiles, generated files).
//
// Bad user data is an expected outcome, not an exception: every reader in backend/data returns a
// DataStatus whose message can be shown to the user as is (it names the line, column or zip entry).
#pragma once

#include <string>
#include <utility>

namespace stickyproxy::backend {

enum class DataError {
  kOk = 0,
  kIo,                    // a file could not be opened, read or written (server side)
  kNotUtf8,               // text that is not valid UTF-8
  kEmptyFile,             // nothing but (at most) a byte-order mark and blank lines
  kHeaderOnly,            // a CSV header with no data rows
  kMalformedCsv,          // an unterminated quote, text after a closing quote, an over-long record
  kRaggedRow,             // a CSV row whose field count differs from the header's
  kDuplicateColumn,       // two CSV columns with the same name
  kMissingColumns,        // required CSV columns absent
  kTooLarge,              // a cap on rows, columns, entries or extracted bytes was exceeded
  kCorruptZip,            // not a zip, or a zip libzip cannot read (bad CRC, truncated)
  kUnsafeZipEntry,        // an entry name that could escape the extraction directory
  kMissingShapefilePart,  // no .shp, several .shp, or a .shp without its .shx/.dbf
  kNotPolygons,           // a shapefile of points or lines
  kCorruptShapefile,      // shapelib cannot read the .shp/.shx/.dbf
};

// A result code plus a user-facing message. Default-constructed means success.
class DataStatus {
 public:
  DataStatus() = default;
  static DataStatus error(DataError code, std::string message) {
    DataStatus status;
    status.code_ = code;
    status.message_ = std::move(message);
    return status;
  }

  bool ok() const { return code_ == DataError::kOk; }
  DataError code() const { return code_; }
  // Empty on success. One sentence or two, fit for the JSON "message" of a 400 answer.
  const std::string& message() const { return message_; }

 private:
  DataError code_ = DataError::kOk;
  std::string message_;
};

}  // namespace stickyproxy::backend
