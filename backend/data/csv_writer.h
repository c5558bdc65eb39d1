// Building CSV text (RFC 4180) in memory.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace stickyproxy::backend {

// Appends fields row by row to an in-memory CSV document in the dialect of csv_format.h (RFC 4180):
// fields separated by commas, rows ended by CRLF, and a field quoted — wrapped in double quotes,
// inner quotes doubled — exactly when it contains a comma, a double quote, CR or LF. Ward names
// come from users' uploads, so any text must survive a round trip through a CSV reader.
class CsvWriter {
 public:
  // Appends a text field.
  void field(std::string_view text);
  // Appends a number in the shortest form that reads back as the same double ("0.25", "1e-10");
  // -0 is written as "0" so equal results give equal text. Non-finite values are written empty.
  void number(double value);
  void number(size_t value);
  // Ends the current row.
  void endRow();

  // The document so far.
  const std::string& text() const { return text_; }
  std::string take() && { return std::move(text_); }

 private:
  void beginField();

  std::string text_;
  bool row_has_field_ = false;
};

}  // namespace stickyproxy::backend
