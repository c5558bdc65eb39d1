// Fuzz target "csv": an uploaded CSV file, read by CsvTable::read() (backend/data/csv_table.h), then
// summarised as the upload answer does.
//
// Input: byte 0 picks the options (bit 0: "WardName" is a required column; bit 1: tiny caps); the
// rest is the file.
//
// Invariants: a table read has a name and one cell per row in every column, and numeric columns
// have a number per row; the summary agrees with the table; and the table written back as CSV
// (every field quoted, csv::appendField's dialect) reads to the same names, cells and types.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/data/csv_format.h"
#include "backend/data/csv_table.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

using backend::ColumnType;
using backend::CsvReadOptions;
using backend::CsvTable;

// Every field quoted, so that no record is a blank line and no name starts with a byte-order mark.
void appendQuoted(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string writeBack(const CsvTable& table) {
  std::string out;
  for (size_t column = 0; column < table.columnCount(); ++column) {
    if (column > 0) out.push_back(backend::csv::kDelimiter);
    appendQuoted(out, table.columns()[column].name());
  }
  out.append(backend::csv::kRecordEnd);
  for (size_t row = 0; row < table.rowCount(); ++row) {
    for (size_t column = 0; column < table.columnCount(); ++column) {
      if (column > 0) out.push_back(backend::csv::kDelimiter);
      appendQuoted(out, table.columns()[column].cell(row));
    }
    out.append(backend::csv::kRecordEnd);
  }
  return out;
}

void checkTable(const CsvTable& table) {
  FUZZ_CHECK(table.columnCount() > 0 && table.rowCount() > 0, "an empty table was read");
  for (const auto& column : table.columns()) {
    FUZZ_CHECK(!column.name().empty(), "a column without a name");
    FUZZ_CHECK(column.size() == table.rowCount(), column.name());
    FUZZ_CHECK(column.missingCount() <= column.size(), column.name());
    if (column.type() == ColumnType::kNumeric) {
      FUZZ_CHECK(column.numbers().size() == column.size(), column.name());
      for (size_t row = 0; row < column.size(); ++row) {
        FUZZ_CHECK(column.isMissing(row) == std::isnan(column.number(row)), column.name() + " row " + std::to_string(row));
      }
    }
  }
  const auto summary = table.summary();
  FUZZ_CHECK(summary.total_rows == table.rowCount() && summary.total_columns == table.columnCount() &&
                 summary.column_names.size() == table.columnCount() && summary.column_types.size() == table.columnCount(),
             "the summary disagrees with the table");
  FUZZ_CHECK(summary.data_completeness >= 0 && summary.data_completeness <= 100, std::to_string(summary.data_completeness));
  (void)summary.toJson();
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  if (size < 1) return 0;
  CsvReadOptions options;
  if ((data[0] & 1) != 0) options.required_columns = {"WardName"};
  if ((data[0] & 2) != 0) options.limits = backend::CsvLimits{8, 8, 32, 256};
  const std::string path = scratchDir() + "/upload.csv";
  writeFile(path, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));

  CsvTable table;
  const backend::DataStatus status = CsvTable::read(path, options, &table);
  if (!status.ok()) {
    FUZZ_CHECK(!status.message().empty(), "a failure without a message");
    FUZZ_CHECK(table.columnCount() == 0 && table.rowCount() == 0, "a failed read left a table: " + status.message());
    return 0;
  }
  checkTable(table);

  const std::string again_path = scratchDir() + "/written.csv";
  writeFile(again_path, writeBack(table));
  CsvReadOptions roomy = options;
  roomy.limits.max_record_bytes = 1 << 24;
  CsvTable again;
  const backend::DataStatus again_status = CsvTable::read(again_path, roomy, &again);
  FUZZ_CHECK(again_status.ok(), "the table written back does not read: " + again_status.message());
  FUZZ_CHECK(again.columnCount() == table.columnCount() && again.rowCount() == table.rowCount(), "shape changed");
  for (size_t column = 0; column < table.columnCount(); ++column) {
    const auto& a = table.columns()[column];
    const auto& b = again.columns()[column];
    FUZZ_CHECK(a.name() == b.name() && a.type() == b.type(), "column " + a.name() + " became " + b.name());
    for (size_t row = 0; row < table.rowCount(); ++row) {
      FUZZ_CHECK(a.cell(row) == b.cell(row), "column " + a.name() + " row " + std::to_string(row) + ": \"" +
                                                 std::string(a.cell(row)) + "\" became \"" + std::string(b.cell(row)) + "\"");
    }
  }
  return 0;
}
