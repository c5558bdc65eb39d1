#include "backend/data/csv_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <system_error>

#include "backend/data/csv_format.h"

namespace stickyproxy::backend {
namespace {

// The first characters that make a spreadsheet evaluate a cell (OWASP, "CSV Injection").
constexpr std::string_view kFormulaStarts = "=+-@\t\r";
constexpr char kFormulaGuard = '\'';

bool looksLikeFormula(std::string_view text) {
  return !text.empty() && kFormulaStarts.find(text.front()) != std::string_view::npos;
}

}  // namespace

void CsvWriter::beginField() {
  if (row_has_field_) text_ += csv::kDelimiter;
  row_has_field_ = true;
}

void CsvWriter::field(std::string_view text) {
  beginField();
  if (looksLikeFormula(text)) {
    std::string guarded;
    guarded.reserve(text.size() + 1);
    guarded += kFormulaGuard;
    guarded += text;
    csv::appendField(text_, guarded);
    return;
  }
  csv::appendField(text_, text);
}

void CsvWriter::number(double value) {
  beginField();
  if (!std::isfinite(value)) return;
  if (value == 0) value = 0.0;  // -0 -> 0
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec == std::errc()) text_.append(buffer.data(), end);
}

void CsvWriter::number(size_t value) {
  beginField();
  text_ += std::to_string(value);
}

void CsvWriter::endRow() {
  text_ += csv::kRecordEnd;
  row_has_field_ = false;
}

}  // namespace stickyproxy::backend
