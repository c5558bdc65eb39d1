#include "backend/data/csv_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

#include "backend/data/csv_format.h"

namespace stickyproxy::backend {

void CsvWriter::beginField() {
  if (row_has_field_) text_ += csv::kDelimiter;
  row_has_field_ = true;
}

void CsvWriter::field(std::string_view text) {
  beginField();
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
