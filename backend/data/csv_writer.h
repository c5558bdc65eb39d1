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
// come from users' uploads, so any text must survive a round trip through a CSV reader: it does
// unchanged, except that text which a spreadsheet would take for a formula comes back with the
// apostrophe field() puts in front of it.
class CsvWriter {
 public:
  // Appends a text field. The files are opened in spreadsheets, which run a cell starting with
  // '=', '+', '-' or '@' (or TAB or CR before one) as a formula, so text from an upload could
  // otherwise make a user's spreadsheet fetch URLs or run commands (CSV injection). Such text
  // gets a leading apostrophe, as OWASP advises: "=HYPERLINK(...)" is written '=HYPERLINK(...)
  // (then quoted as any field) and "-5 North" as '-5 North. Spreadsheets show the text as typed;
  // other readers see the apostrophe. Numbers go through number() and are never altered.
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
