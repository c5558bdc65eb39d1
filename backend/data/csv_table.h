// A CSV file (RFC 4180) read into typed columns, with the checks an upload needs.
//
// The reader streams the file in fixed-size blocks and stops at the first problem or cap, so a
// hostile upload costs at most the caps' worth of memory. Bad data never throws: read() returns a
// DataStatus whose message names the line or column at fault.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <picojson.h>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

struct CsvLimits {
  size_t max_rows = 100000;  // data rows, header excluded
  size_t max_columns = 1000;
  size_t max_cells = 5000000;         // rows x columns
  size_t max_record_bytes = 1 << 20;  // one record, quoted line breaks included
};

struct CsvReadOptions {
  // Columns that must be present, e.g. {"WardName", "WardCode"}; matched case-insensitively.
  std::vector<std::string> required_columns;
  CsvLimits limits;
};

enum class ColumnType { kNumeric, kText };

// "numeric" or "text", as data_summary.column_types reports them.
const char* columnTypeName(ColumnType type);

// True for the cells pandas-style readers treat as missing: empty (after trimming spaces),
// NA, N/A, NaN, null, in any letter case.
bool isMissingValue(std::string_view cell);

// The cell as a finite double (surrounding spaces and a leading '+' allowed), or nullopt.
// Locale-independent: the decimal separator is always '.'.
std::optional<double> parseNumber(std::string_view cell);

// One column. Cells are stored back to back in one string to keep per-cell overhead at 4 bytes.
class CsvColumn {
 public:
  explicit CsvColumn(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  ColumnType type() const { return type_; }
  size_t size() const { return ends_.size(); }

  // The cell of data row `row` (0-based) as written in the file, quotes removed.
  std::string_view cell(size_t row) const;
  bool isMissing(size_t row) const { return missing_[row]; }
  size_t missingCount() const { return missing_count_; }
  // kNumeric columns only: the parsed value, NaN where the cell is missing.
  double number(size_t row) const { return numbers_[row]; }
  const std::vector<double>& numbers() const { return numbers_; }

 private:
  friend class CsvTable;
  void append(std::string_view cell);
  // Sets the type (numeric when every non-missing cell parses) and fills numbers_.
  void inferType();

  std::string name_;
  ColumnType type_ = ColumnType::kText;
  std::string text_;
  std::vector<uint32_t> ends_;  // text_ offset one past each cell
  std::vector<bool> missing_;
  size_t missing_count_ = 0;
  std::vector<double> numbers_;
};

// The data_summary of an upload answer.
struct DataSummary {
  size_t total_rows = 0;
  size_t total_columns = 0;
  std::vector<std::string> column_names;
  std::vector<std::vector<std::string>> preview_rows;  // the first rows, every cell as text
  std::vector<std::string> column_types;               // "numeric" or "text", per column
  double data_completeness = 0;                        // percent of non-missing cells, 2 decimals
  std::vector<double> column_completeness;             // the same per column

  // {total_rows, total_columns, column_names, preview_rows: [{column: cell}], column_types:
  // {column: type}, data_completeness, column_completeness: {column: percent}}. Missing preview
  // cells are JSON null.
  picojson::object toJson() const;
};

class CsvTable {
 public:
  // Reads the CSV at `path` into `table` (replacing its contents). Accepts a UTF-8 byte-order mark,
  // LF, CRLF or CR line ends, quoted fields with doubled quotes and line breaks; skips blank lines;
  // trims header names and names an empty one "Unnamed: <index>". Fails with:
  //   kIo (cannot open/read), kNotUtf8, kEmptyFile, kHeaderOnly, kMalformedCsv, kRaggedRow,
  //   kDuplicateColumn, kMissingColumns (checked right after the header), kTooLarge.
  // On failure `table` is left empty.
  static DataStatus read(const std::string& path, const CsvReadOptions& options, CsvTable* table);

  size_t rowCount() const { return rows_; }
  size_t columnCount() const { return columns_.size(); }
  const std::vector<CsvColumn>& columns() const { return columns_; }

  // Index of the column called `name`: an exact match first, else a case-insensitive one.
  std::optional<size_t> columnIndex(std::string_view name) const;
  // The column called `name` (as columnIndex() finds it), or nullptr.
  const CsvColumn* column(std::string_view name) const;

  // Counts, names, types and completeness, with the first `preview_rows` rows as text.
  DataSummary summary(size_t preview_rows = 5) const;

 private:
  std::vector<CsvColumn> columns_;
  size_t rows_ = 0;
};

}  // namespace stickyproxy::backend
