// The CSV dialect of the backend, in one place: RFC 4180 as CsvTable reads it and CsvWriter (and
// the synthetic data generator) write it.
#pragma once

#include <string>
#include <string_view>

namespace stickyproxy::backend::csv {

inline constexpr char kDelimiter = ',';
inline constexpr char kQuote = '"';
// The record end we write. Readers accept LF, CRLF and a lone CR.
inline constexpr std::string_view kRecordEnd = "\r\n";
// The characters a bare (unquoted) field cannot hold.
inline constexpr std::string_view kSpecialCharacters = ",\"\r\n";
static_assert(kSpecialCharacters[0] == kDelimiter && kSpecialCharacters[1] == kQuote);

// True when `text` cannot be written as a bare field: it holds the delimiter, a quote, CR or LF.
bool needsQuoting(std::string_view text);

// Appends `text` to `out` as one field: as it is, or when needsQuoting() wrapped in quotes with
// every inner quote doubled. A reader gives back exactly `text`.
void appendField(std::string& out, std::string_view text);

// appendField() into a new string.
std::string quoteField(std::string_view text);

}  // namespace stickyproxy::backend::csv
