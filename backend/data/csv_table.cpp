#include "backend/data/csv_table.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <unordered_map>

#include "backend/data/csv_format.h"
#include "backend/data/text_util.h"
#include "proxy/http/http_message.h"

namespace stickyproxy::backend {
namespace {

constexpr size_t kReadBlock = 64 * 1024;
// Offsets into a column's text are 32-bit; the total-bytes cap keeps every column below that.
constexpr size_t kMaxTotalBytes = size_t{1} << 30;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

std::string hexByte(unsigned char byte) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out = "0x";
  out.push_back(kDigits[byte >> 4]);
  out.push_back(kDigits[byte & 0xF]);
  return out;
}

double roundTo2(double value) { return std::round(value * 100.0) / 100.0; }

// Physical lines of a file, read block by block. A line ends at LF, CRLF or a lone CR; the
// terminator is not part of the line.
class LineReader {
 public:
  enum class Result { kLine, kEnd, kTooLong, kIoError };

  LineReader(std::FILE* file, size_t max_line) : file_(file), max_line_(max_line), buffer_(kReadBlock) {}

  Result next(std::string* line) {
    line->clear();
    bool any = false;
    while (true) {
      if (pos_ == len_) {
        if (eof_) return any ? Result::kLine : Result::kEnd;
        len_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
        pos_ = 0;
        bytes_read_ += len_;
        if (len_ == 0) {
          if (std::ferror(file_)) return Result::kIoError;
          eof_ = true;
          continue;
        }
      }
      if (skip_lf_) {  // the LF of a CRLF split across blocks or lines
        skip_lf_ = false;
        if (buffer_[pos_] == '\n') {
          ++pos_;
          continue;
        }
      }
      if (!any) {
        any = true;
        ++line_number_;
      }
      size_t start = pos_;
      while (pos_ < len_ && buffer_[pos_] != '\n' && buffer_[pos_] != '\r') ++pos_;
      line->append(buffer_.data() + start, pos_ - start);
      if (line->size() > max_line_) return Result::kTooLong;
      if (pos_ < len_) {
        skip_lf_ = buffer_[pos_] == '\r';
        ++pos_;
        return Result::kLine;
      }
    }
  }

  // 1-based number of the line next() returned last.
  size_t lineNumber() const { return line_number_; }
  uint64_t bytesRead() const { return bytes_read_; }

 private:
  std::FILE* file_;
  size_t max_line_;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
  bool skip_lf_ = false;
  size_t line_number_ = 0;
  uint64_t bytes_read_ = 0;
};

// Splits records into fields, one physical line at a time: a quoted field may span lines.
class RecordParser {
 public:
  enum class Result { kRecord, kNeedMore, kError };

  // Starts a record; fields beyond `store_limit` are counted but not kept.
  void begin(size_t store_limit) {
    fields_.clear();
    field_.clear();
    field_count_ = 0;
    store_limit_ = store_limit;
    state_ = State::kFieldStart;
  }

  Result feed(std::string_view line, size_t line_number) {
    if (state_ == State::kQuoted) field_.push_back('\n');  // the line break the quotes held
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      switch (state_) {
        case State::kFieldStart:
          if (c == csv::kQuote) {
            state_ = State::kQuoted;
          } else if (c == csv::kDelimiter) {
            endField();
          } else {
            field_.push_back(c);
            state_ = State::kUnquoted;
          }
          break;
        case State::kUnquoted:
          // A quote inside an unquoted field is kept as a character, as spreadsheet tools do.
          if (c == csv::kDelimiter) {
            endField();
            state_ = State::kFieldStart;
          } else {
            field_.push_back(c);
          }
          break;
        case State::kQuoted:
          if (c == csv::kQuote) {
            state_ = State::kQuoteInQuoted;
          } else {
            field_.push_back(c);
          }
          break;
        case State::kQuoteInQuoted:
          if (c == csv::kQuote) {
            field_.push_back(csv::kQuote);
            state_ = State::kQuoted;
          } else if (c == csv::kDelimiter) {
            endField();
            state_ = State::kFieldStart;
          } else if (c == ' ' || c == '\t') {
            state_ = State::kAfterQuoted;
          } else {
            return fail(line_number, i);
          }
          break;
        case State::kAfterQuoted:
          if (c == csv::kDelimiter) {
            endField();
            state_ = State::kFieldStart;
          } else if (c != ' ' && c != '\t') {
            return fail(line_number, i);
          }
          break;
      }
    }
    if (state_ == State::kQuoted) return Result::kNeedMore;
    endField();
    return Result::kRecord;
  }

  bool inQuotedField() const { return state_ == State::kQuoted; }
  const std::vector<std::string>& fields() const { return fields_; }
  size_t fieldCount() const { return field_count_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kAfterQuoted };

  void endField() {
    if (field_count_ < store_limit_) fields_.push_back(field_);
    ++field_count_;
    field_.clear();
  }

  Result fail(size_t line_number, size_t index) {
    error_ = "Line " + std::to_string(line_number) + ", character " + std::to_string(index + 1) +
             ": unexpected text after a closing quote (a quote inside a quoted field must be "
             "doubled: \"\")";
    return Result::kError;
  }

  State state_ = State::kFieldStart;
  std::vector<std::string> fields_;
  std::string field_;
  size_t field_count_ = 0;
  size_t store_limit_ = 0;
  std::string error_;
};

}  // namespace

const char* columnTypeName(ColumnType type) { return type == ColumnType::kNumeric ? "numeric" : "text"; }

bool isMissingValue(std::string_view cell) {
  cell = trimAscii(cell);
  return cell.empty() || equalsIgnoreCase(cell, "NA") || equalsIgnoreCase(cell, "N/A") ||
         equalsIgnoreCase(cell, "NaN") || equalsIgnoreCase(cell, "null");
}

std::optional<double> parseNumber(std::string_view cell) {
  cell = trimAscii(cell);
  if (cell.size() > 1 && cell.front() == '+' && cell[1] != '-' && cell[1] != '+') cell.remove_prefix(1);
  if (cell.empty()) return std::nullopt;
  double value = 0;
  const char* end = cell.data() + cell.size();
  auto [ptr, ec] = std::from_chars(cell.data(), end, value, std::chars_format::general);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::string_view CsvColumn::cell(size_t row) const {
  const size_t begin = row == 0 ? 0 : ends_[row - 1];
  return std::string_view(text_).substr(begin, ends_[row] - begin);
}

void CsvColumn::append(std::string_view cell) {
  text_.append(cell);
  ends_.push_back(static_cast<uint32_t>(text_.size()));
  const bool missing = isMissingValue(cell);
  missing_.push_back(missing);
  if (missing) ++missing_count_;
}

void CsvColumn::inferType() {
  std::vector<double> numbers;
  numbers.reserve(size());
  for (size_t row = 0; row < size(); ++row) {
    if (missing_[row]) {
      numbers.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    auto value = parseNumber(cell(row));
    if (!value) {
      type_ = ColumnType::kText;
      numbers_.clear();
      return;
    }
    numbers.push_back(*value);
  }
  // An all-missing column counts as numeric, as pandas gives it a float dtype.
  type_ = ColumnType::kNumeric;
  numbers_ = std::move(numbers);
}

DataStatus CsvTable::read(const std::string& path, const CsvReadOptions& options, CsvTable* table) {
  *table = CsvTable();
  CsvTable result;
  const CsvLimits& limits = options.limits;
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) return DataStatus::error(DataError::kIo, "Cannot open the uploaded CSV file");

  LineReader reader(file.get(), limits.max_record_bytes);
  RecordParser parser;
  std::string line;
  bool header_done = false;
  bool in_record = false;
  size_t record_line = 0;
  size_t record_bytes = 0;
  size_t header_fields = 0;
  parser.begin(limits.max_columns);

  while (true) {
    const LineReader::Result got = reader.next(&line);
    if (got == LineReader::Result::kIoError) {
      return DataStatus::error(DataError::kIo, "Reading the uploaded CSV file failed");
    }
    if (got == LineReader::Result::kTooLong) {
      return DataStatus::error(DataError::kMalformedCsv,
                               "Line " + std::to_string(reader.lineNumber()) + " is longer than " +
                                   std::to_string(limits.max_record_bytes) + " bytes");
    }
    if (reader.bytesRead() > kMaxTotalBytes) {
      return DataStatus::error(DataError::kTooLarge, "The CSV file is larger than " +
                                                         std::to_string(kMaxTotalBytes >> 20) + " MiB");
    }
    if (got == LineReader::Result::kEnd) break;
    const size_t line_number = reader.lineNumber();

    std::string_view text = line;
    if (line_number == 1) {
      if (text.size() >= 2 &&
          ((text[0] == '\xFF' && text[1] == '\xFE') || (text[0] == '\xFE' && text[1] == '\xFF'))) {
        return DataStatus::error(
            DataError::kNotUtf8,
            "The CSV file is UTF-16 text; save it as UTF-8 (\"CSV UTF-8\") and upload it again");
      }
      if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    }
    if (auto bad = firstInvalidUtf8(text)) {
      return DataStatus::error(DataError::kNotUtf8,
                               "The CSV file is not valid UTF-8 text: line " + std::to_string(line_number) +
                                   " has byte " + hexByte(static_cast<unsigned char>(text[*bad])) +
                                   " at byte " + std::to_string(*bad + 1) + " of the line" +
                                   ". Save it as UTF-8 (\"CSV UTF-8\") and upload it again");
    }
    if (text.find('\0') != std::string_view::npos) {
      return DataStatus::error(DataError::kNotUtf8,
                               "Line " + std::to_string(line_number) +
                                   " contains a NUL byte: this is a binary file, not CSV text");
    }
    if (!in_record) {
      if (trimAscii(text).empty()) continue;  // blank lines between records are skipped
      in_record = true;
      record_line = line_number;
      record_bytes = 0;
    }
    record_bytes += text.size() + 1;
    if (record_bytes > limits.max_record_bytes) {
      return DataStatus::error(DataError::kMalformedCsv,
                               "The record starting on line " + std::to_string(record_line) +
                                   " is longer than " + std::to_string(limits.max_record_bytes) +
                                   " bytes (is a quoted field missing its closing quote?)");
    }
    const RecordParser::Result parsed = parser.feed(text, line_number);
    if (parsed == RecordParser::Result::kError)
      return DataStatus::error(DataError::kMalformedCsv, parser.error());
    if (parsed == RecordParser::Result::kNeedMore) continue;
    in_record = false;

    if (!header_done) {
      header_done = true;
      header_fields = parser.fieldCount();
      if (header_fields > limits.max_columns) {
        return DataStatus::error(DataError::kTooLarge,
                                 "The CSV file has " + std::to_string(header_fields) + " columns; at most " +
                                     std::to_string(limits.max_columns) + " are accepted");
      }
      std::unordered_map<std::string, size_t> seen;
      for (size_t i = 0; i < header_fields; ++i) {
        std::string name(trimAscii(parser.fields()[i]));
        if (name.empty()) name = "Unnamed: " + std::to_string(i);
        auto [it, inserted] = seen.emplace(name, i);
        if (!inserted) {
          return DataStatus::error(DataError::kDuplicateColumn,
                                   "Duplicate column name '" + name + "' (columns " +
                                       std::to_string(it->second + 1) + " and " + std::to_string(i + 1) +
                                       "); column names must be unique");
        }
        result.columns_.emplace_back(std::move(name));
      }
      std::string missing;
      for (const std::string& required : options.required_columns) {
        if (!result.columnIndex(required)) missing += (missing.empty() ? "" : ", ") + required;
      }
      if (!missing.empty()) {
        return DataStatus::error(DataError::kMissingColumns,
                                 "Missing required column(s): " + missing +
                                     ". The first row of the CSV must hold the column names");
      }
      parser.begin(header_fields);
      continue;
    }

    if (parser.fieldCount() != header_fields) {
      return DataStatus::error(DataError::kRaggedRow, "Line " + std::to_string(record_line) + " has " +
                                                          std::to_string(parser.fieldCount()) +
                                                          " fields but the header has " +
                                                          std::to_string(header_fields) +
                                                          " (check for unquoted commas or missing values)");
    }
    if (result.rows_ == limits.max_rows || (result.rows_ + 1) * header_fields > limits.max_cells) {
      return DataStatus::error(DataError::kTooLarge,
                               "The CSV file has more than " + std::to_string(result.rows_) +
                                   " data rows, the most accepted for its column count");
    }
    for (size_t i = 0; i < header_fields; ++i) result.columns_[i].append(parser.fields()[i]);
    ++result.rows_;
    parser.begin(header_fields);
  }

  if (in_record && parser.inQuotedField()) {
    return DataStatus::error(DataError::kMalformedCsv, "The quoted field starting on line " +
                                                           std::to_string(record_line) + " is never closed");
  }
  if (!header_done) return DataStatus::error(DataError::kEmptyFile, "The CSV file is empty");
  if (result.rows_ == 0) {
    return DataStatus::error(DataError::kHeaderOnly, "The CSV file has a header row but no data rows");
  }
  for (CsvColumn& column : result.columns_) column.inferType();
  *table = std::move(result);
  return DataStatus();
}

std::optional<size_t> CsvTable::columnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name() == name) return i;
  }
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (equalsIgnoreCase(columns_[i].name(), name)) return i;
  }
  return std::nullopt;
}

const CsvColumn* CsvTable::column(std::string_view name) const {
  auto index = columnIndex(name);
  return index ? &columns_[*index] : nullptr;
}

DataSummary CsvTable::summary(size_t preview_rows) const {
  DataSummary summary;
  summary.total_rows = rows_;
  summary.total_columns = columns_.size();
  size_t present = 0;
  for (const CsvColumn& column : columns_) {
    summary.column_names.push_back(column.name());
    summary.column_types.push_back(columnTypeName(column.type()));
    const size_t column_present = rows_ - column.missingCount();
    present += column_present;
    summary.column_completeness.push_back(
        rows_ == 0 ? 0.0
                   : roundTo2(100.0 * static_cast<double>(column_present) / static_cast<double>(rows_)));
  }
  const size_t cells = rows_ * columns_.size();
  summary.data_completeness =
      cells == 0 ? 0.0 : roundTo2(100.0 * static_cast<double>(present) / static_cast<double>(cells));
  for (size_t row = 0; row < std::min(preview_rows, rows_); ++row) {
    std::vector<std::string> cells_text;
    for (const CsvColumn& column : columns_) cells_text.emplace_back(column.cell(row));
    summary.preview_rows.push_back(std::move(cells_text));
  }
  return summary;
}

picojson::object DataSummary::toJson() const {
  picojson::object out;
  out["total_rows"] = picojson::value(static_cast<double>(total_rows));
  out["total_columns"] = picojson::value(static_cast<double>(total_columns));
  picojson::array names;
  picojson::object types;
  picojson::object completeness;
  for (size_t i = 0; i < column_names.size(); ++i) {
    names.emplace_back(column_names[i]);
    types[column_names[i]] = picojson::value(column_types[i]);
    completeness[column_names[i]] = picojson::value(column_completeness[i]);
  }
  picojson::array preview;
  for (const auto& row : preview_rows) {
    picojson::object record;
    for (size_t i = 0; i < row.size() && i < column_names.size(); ++i) {
      record[column_names[i]] = isMissingValue(row[i]) ? picojson::value() : picojson::value(row[i]);
    }
    preview.emplace_back(std::move(record));
  }
  out["column_names"] = picojson::value(std::move(names));
  out["column_types"] = picojson::value(std::move(types));
  out["preview_rows"] = picojson::value(std::move(preview));
  out["data_completeness"] = picojson::value(data_completeness);
  out["column_completeness"] = picojson::value(std::move(completeness));
  return out;
}

}  // namespace stickyproxy::backend
