// The backend's one result type: the outcome of reading, analysing or writing user data (CSV
// tables, zipped shapefiles, analyses, exports), as a DataStatus, or as an Expected<T> holding
// either a value or a failed DataStatus.
//
// Bad user data is an expected outcome, not an exception: every reader, the analysis and the
// exporters return a DataStatus (or an Expected) whose message can be shown to the user as is (it
// names the line, column, variable or zip entry), and whose code lets a route pick its answer.
#pragma once

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <optional>
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
  kBadAnalysisInput,      // the data cannot be analysed as asked: an unknown, text or empty
                          // variable, too few or too many variables, a malformed ward table
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

// Shorthand for a failed analysis step, so analysis code reads `return AnalysisError{"..."};`:
// converts to DataStatus::error(DataError::kBadAnalysisInput, message). The message is worded
// for the user (it ends up in the route's "message"), e.g. "Unknown variable 'pfprr'".
struct AnalysisError {
  std::string message;

  operator DataStatus() const& { return DataStatus::error(DataError::kBadAnalysisInput, message); }
  operator DataStatus() && { return DataStatus::error(DataError::kBadAnalysisInput, std::move(message)); }
};

// Holds either a T or a failed DataStatus. Functions on the data path return this instead of
// throwing. Reading value() of a failed Expected is a programming error: asserted, and in a
// release build it stops the process with a message rather than read a value that is not there
// (undefined behaviour). Check ok() first, or take valueIfOk().
template <typename T>
class [[nodiscard]] Expected {
 public:
  // Implicit on purpose, so a function can `return value;`, `return status;` or
  // `return AnalysisError{...};`.
  Expected(T value) : value_(std::move(value)) {}
  // `status` must be a failure. Passing a success is a bug (asserted); release builds turn it
  // into a kIo failure rather than an Expected that is neither a value nor an error.
  Expected(DataStatus status) : status_(std::move(status)) {
    assert(!status_.ok());
    if (status_.ok()) status_ = DataStatus::error(DataError::kIo, "Internal error: a failure without a cause");
  }
  Expected(AnalysisError error) : Expected(DataStatus(std::move(error))) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    checkOk();
    return *value_;
  }
  T& value() & {
    checkOk();
    return *value_;
  }
  T&& value() && {
    checkOk();
    return std::move(*value_);
  }
  // The value, or nullptr when this failed.
  const T* valueIfOk() const { return value_ ? &*value_ : nullptr; }
  T* valueIfOk() { return value_ ? &*value_ : nullptr; }

  // Why it failed: a failed status, or a success (code kOk) when ok().
  const DataStatus& status() const { return status_; }
  // The failure's message; empty when ok().
  const std::string& error() const { return status_.message(); }

 private:
  void checkOk() const {
    assert(ok());
    if (!ok()) {
      std::fprintf(stderr, "Expected::value() read from a failure: %s\n", status_.message().c_str());
      std::abort();
    }
  }

  std::optional<T> value_;
  DataStatus status_;
};

}  // namespace stickyproxy::backend
