#include "backend/analysis/csv_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace stickyproxy::backend {
namespace {

void appendField(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += text;
    return;
  }
  out += '"';
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

void CsvWriter::beginField() {
  if (row_has_field_) text_ += ',';
  row_has_field_ = true;
}

void CsvWriter::field(std::string_view text) {
  beginField();
  appendField(text_, text);
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
  text_ += "\r\n";
  row_has_field_ = false;
}

std::string csvField(std::string_view text) {
  std::string out;
  appendField(out, text);
  return out;
}

}  // namespace stickyproxy::backend
