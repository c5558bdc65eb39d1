#include "tests/integration/csv_text.h"

#include <algorithm>

namespace stickyproxy::integration {

std::optional<std::vector<CsvRow>> parseCsv(std::string_view text) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  bool in_quotes = false;
  bool row_has_data = false;  // a blank line is no record
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
  };
  auto end_row = [&] {
    end_field();
    if (row_has_data || row.size() > 1) rows.push_back(std::move(row));
    row.clear();
    row_has_data = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c != '"') {
        field.push_back(c);
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else {
        in_quotes = false;
      }
      continue;
    }
    if (c == '"') {
      in_quotes = true;
      row_has_data = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      end_row();
    } else if (c != '\r') {
      field.push_back(c);
      row_has_data = true;
    }
  }
  if (in_quotes) return std::nullopt;
  if (row_has_data || !row.empty()) end_row();
  return rows;
}

std::optional<std::vector<std::string>> csvColumn(const std::vector<CsvRow>& rows, std::string_view name) {
  if (rows.empty()) return std::nullopt;
  auto header = std::find(rows[0].begin(), rows[0].end(), name);
  if (header == rows[0].end()) return std::nullopt;
  const auto column = static_cast<size_t>(header - rows[0].begin());
  std::vector<std::string> values;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (column >= rows[i].size()) return std::nullopt;
    values.push_back(rows[i][column]);
  }
  return values;
}

}  // namespace stickyproxy::integration
