#include "backend/data/csv_table.h"

#include <cmath>
#include <string>

#include <catch2/catch.hpp>

#include "backend/data/text_util.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

using stickyproxy::testing::TempDir;
using stickyproxy::testing::writeFile;

// Writes `bytes` to a file in `dir` and reads it back as CSV.
DataStatus readCsv(const TempDir& dir, std::string_view bytes, CsvTable* table,
                   CsvReadOptions options = {}) {
  const std::string path = dir.file("upload.csv");
  writeFile(path, bytes);
  return CsvTable::read(path, options, table);
}

CsvReadOptions requiring(std::vector<std::string> columns) {
  CsvReadOptions options;
  options.required_columns = std::move(columns);
  return options;
}

TEST_CASE("quoted fields keep their commas, doubled quotes and line breaks", "[data]") {
  TempDir dir;
  CsvTable table;
  const DataStatus status = readCsv(dir,
                                    "WardName,WardCode,note\n"
                                    "\"Sabon, Gari\",NISAGA01,\"He said \"\"hi\"\"\"\n"
                                    "Tudun Wada,NISAGA02,\"two\nlines\"\n"
                                    "\"\",NISAGA03,plain \"inner\" quote\n",
                                    &table);
  REQUIRE(status.ok());
  REQUIRE(table.rowCount() == 3);
  const CsvColumn* name = table.column("WardName");
  const CsvColumn* note = table.column("note");
  REQUIRE(name != nullptr);
  REQUIRE(note != nullptr);
  CHECK(name->cell(0) == "Sabon, Gari");
  CHECK(note->cell(0) == "He said \"hi\"");
  CHECK(note->cell(1) == "two\nlines");
  CHECK(name->cell(2).empty());
  CHECK(name->isMissing(2));
  CHECK(note->cell(2) == "plain \"inner\" quote");
}

TEST_CASE("CRLF or lone CR line ends and a UTF-8 byte-order mark are accepted", "[data]") {
  TempDir dir;
  CsvTable table;
  REQUIRE(readCsv(dir, "\xEF\xBB\xBFWardName,pfpr\r\nKpakungu,0.25\r\n\"Bo\r\nsso\",0.5\r\n", &table,
                  requiring({"WardName"}))
              .ok());
  REQUIRE(table.columnCount() == 2);
  CHECK(table.columns()[0].name() == "WardName");  // no BOM glued to the first name
  CHECK(table.rowCount() == 2);
  CHECK(table.column("WardName")->cell(1) == "Bo\nsso");

  REQUIRE(readCsv(dir, "WardName,pfpr\rA,1\rB,2", &table).ok());
  CHECK(table.rowCount() == 2);
  CHECK(table.column("pfpr")->number(1) == 2.0);
}

TEST_CASE("a column is numeric when every present value parses, text otherwise", "[data]") {
  TempDir dir;
  CsvTable table;
  REQUIRE(readCsv(dir,
                  "WardName,population,pfpr,code,empty,settlement_type\n"
                  "A, 12000 ,+0.25,01,,Urban\n"
                  "B,1.2e4,-.5,1A,NA,Rural\n"
                  "C,NA,7.,02,,Rural\n",
                  &table)
              .ok());
  CHECK(table.column("WardName")->type() == ColumnType::kText);
  CHECK(table.column("population")->type() == ColumnType::kNumeric);
  CHECK(table.column("pfpr")->type() == ColumnType::kNumeric);
  CHECK(table.column("code")->type() == ColumnType::kText);
  CHECK(table.column("empty")->type() == ColumnType::kNumeric);  // all missing, like pandas' float column
  CHECK(table.column("settlement_type")->type() == ColumnType::kText);
  const CsvColumn& population = *table.column("population");
  CHECK(population.number(0) == 12000.0);
  CHECK(population.number(1) == 12000.0);
  CHECK(std::isnan(population.number(2)));
  CHECK(table.column("pfpr")->number(0) == 0.25);
  CHECK(table.column("pfpr")->number(1) == -0.5);
  CHECK(table.column("pfpr")->number(2) == 7.0);
  CHECK(columnTypeName(ColumnType::kNumeric) == std::string("numeric"));
  CHECK_FALSE(parseNumber("inf"));
  CHECK_FALSE(parseNumber("1,5"));
  CHECK_FALSE(parseNumber("0x10"));
  CHECK(parseNumber(" 3.5 ") == 3.5);
}

TEST_CASE("NA, N/A, NaN, null and empty cells are missing in any letter case", "[data]") {
  for (const char* cell :
       {"", "  ", "NA", "na", "N/A", "n/a", "NaN", "nan", "NAN", "null", "NULL", " Null "}) {
    CHECK(isMissingValue(cell));
  }
  for (const char* cell : {"0", "none", "-", "NAs", "nil"}) CHECK_FALSE(isMissingValue(cell));

  TempDir dir;
  CsvTable table;
  REQUIRE(readCsv(dir,
                  "WardName,a,b\n"
                  "W1,1,x\n"
                  "W2,N/A,y\n"
                  "W3,null,\n"
                  "W4,nan,z\n",
                  &table)
              .ok());
  CHECK(table.column("a")->missingCount() == 3);
  CHECK(table.column("a")->type() == ColumnType::kNumeric);
  CHECK(table.column("b")->missingCount() == 1);
}

TEST_CASE("data summary reports counts, types, the first five rows and completeness", "[data]") {
  TempDir dir;
  std::string csv = "WardName,WardCode,pfpr,settlement_type\n";
  for (int i = 1; i <= 8; ++i) {
    csv += "Ward" + std::to_string(i) + ",NISAGA0" + std::to_string(i) + "," +
           (i % 4 == 0 ? "NA" : "0." + std::to_string(i)) + ",Rural\n";
  }
  CsvTable table;
  REQUIRE(readCsv(dir, csv, &table, requiring({"WardName", "WardCode"})).ok());
  const DataSummary summary = table.summary();
  CHECK(summary.total_rows == 8);
  CHECK(summary.total_columns == 4);
  CHECK(summary.column_names == std::vector<std::string>{"WardName", "WardCode", "pfpr", "settlement_type"});
  CHECK(summary.column_types == std::vector<std::string>{"text", "text", "numeric", "text"});
  REQUIRE(summary.preview_rows.size() == 5);
  CHECK(summary.preview_rows[3] == std::vector<std::string>{"Ward4", "NISAGA04", "NA", "Rural"});
  CHECK(summary.column_completeness == std::vector<double>{100.0, 100.0, 75.0, 100.0});
  CHECK(summary.data_completeness == 93.75);  // 2 missing of 32 cells

  const picojson::value json(summary.toJson());
  CHECK(json.get("total_rows").get<double>() == 8);
  CHECK(json.get("column_types").get("pfpr").get<std::string>() == "numeric");
  CHECK(json.get("preview_rows").get(3).get("pfpr").is<picojson::null>());
  CHECK(json.get("preview_rows").get(0).get("WardName").get<std::string>() == "Ward1");
  CHECK(json.get("data_completeness").get<double>() == 93.75);
}

TEST_CASE("header names are trimmed, blank ones named Unnamed, and required columns match any case",
          "[data]") {
  TempDir dir;
  CsvTable table;
  REQUIRE(
      readCsv(dir, " wardname ,WARDCODE,\n\nA,B,C\n\n", &table, requiring({"WardName", "WardCode"})).ok());
  CHECK(table.columns()[0].name() == "wardname");
  CHECK(table.columns()[2].name() == "Unnamed: 2");
  CHECK(table.columnIndex("WardCode") == 1u);
  CHECK(table.rowCount() == 1);  // blank lines skipped
}

TEST_CASE("a CSV file that is not UTF-8 is refused with the line at fault", "[data]") {
  TempDir dir;
  CsvTable table;
  DataStatus status = readCsv(dir, "WardName,pfpr\nKpakungu,0.2\nCaf\xE9,0.3\n", &table);
  CHECK(status.code() == DataError::kNotUtf8);
  CHECK_THAT(status.message(),
             Catch::Contains("line 3") && Catch::Contains("0xE9") && Catch::Contains("UTF-8"));

  status = readCsv(dir, std::string("\xFF\xFEW\0a\0r\0d\0", 10), &table);
  CHECK(status.code() == DataError::kNotUtf8);
  CHECK_THAT(status.message(), Catch::Contains("UTF-16"));

  status = readCsv(dir, std::string("WardName,pfpr\nA\0B,1\n", 20), &table);
  CHECK(status.code() == DataError::kNotUtf8);
  CHECK_THAT(status.message(), Catch::Contains("NUL"));
}

TEST_CASE("empty and header-only files are refused", "[data]") {
  TempDir dir;
  CsvTable table;
  DataStatus status = readCsv(dir, "", &table);
  CHECK(status.code() == DataError::kEmptyFile);
  CHECK(status.message() == "The CSV file is empty");
  CHECK(readCsv(dir, "\xEF\xBB\xBF\r\n\n  \n", &table).code() == DataError::kEmptyFile);

  status = readCsv(dir, "WardName,WardCode,pfpr\r\n\r\n", &table);
  CHECK(status.code() == DataError::kHeaderOnly);
  CHECK(status.message() == "The CSV file has a header row but no data rows");
}

TEST_CASE("a ragged row is refused naming its line", "[data]") {
  TempDir dir;
  CsvTable table;
  DataStatus status = readCsv(dir, "WardName,WardCode,pfpr\nA,X1,0.1\n\nB,X2\nC,X3,0.3\n", &table);
  CHECK(status.code() == DataError::kRaggedRow);
  CHECK_THAT(status.message(), Catch::StartsWith("Line 4 has 2 fields but the header has 3"));
  CHECK(table.rowCount() == 0);  // nothing half-read is handed out
  CHECK(table.columnCount() == 0);

  status = readCsv(dir, "WardName,pfpr\n\"multi\nline\",0.1\nB,0.2,extra\n", &table);
  CHECK(status.code() == DataError::kRaggedRow);
  CHECK_THAT(status.message(), Catch::StartsWith("Line 4 has 3 fields"));
}

TEST_CASE("duplicate and missing columns are refused by name", "[data]") {
  TempDir dir;
  CsvTable table;
  DataStatus status = readCsv(dir, "WardName,pfpr,WardCode,pfpr\nA,1,X,2\n", &table);
  CHECK(status.code() == DataError::kDuplicateColumn);
  CHECK_THAT(status.message(), Catch::Contains("'pfpr'") && Catch::Contains("columns 2 and 4"));

  status = readCsv(dir, "WardName,pfpr\nA,1\n", &table, requiring({"WardName", "WardCode", "LGAName"}));
  CHECK(status.code() == DataError::kMissingColumns);
  CHECK_THAT(status.message(), Catch::StartsWith("Missing required column(s): WardCode, LGAName"));
}

TEST_CASE("row, column and record size caps stop the reader early", "[data]") {
  TempDir dir;
  CsvTable table;
  CsvReadOptions options;
  options.limits.max_rows = 10;
  options.limits.max_columns = 3;
  options.limits.max_record_bytes = 1000;

  std::string rows = "a,b\n";
  for (int i = 0; i < 11; ++i) rows += std::to_string(i) + ",x\n";
  DataStatus status = readCsv(dir, rows, &table, options);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("more than 10 data rows"));

  status = readCsv(dir, "a,b,c,d\n1,2,3,4\n", &table, options);
  CHECK(status.code() == DataError::kTooLarge);
  CHECK_THAT(status.message(), Catch::Contains("4 columns") && Catch::Contains("at most 3"));

  // An unterminated quote must not make the reader swallow the rest of a big file.
  std::string runaway = "a,b\n1,\"never closed\n";
  for (int i = 0; i < 20000; ++i) runaway += "filler line,with a comma\n";
  status = readCsv(dir, runaway, &table, options);
  CHECK(status.code() == DataError::kMalformedCsv);
  CHECK_THAT(status.message(), Catch::Contains("line 2") && Catch::Contains("longer than 1000 bytes"));

  status = readCsv(dir, "a,b\n1,\"open\n2,3\n", &table);
  CHECK(status.code() == DataError::kMalformedCsv);
  CHECK_THAT(status.message(), Catch::Contains("starting on line 2 is never closed"));

  status = readCsv(dir, "a,b\n\"x\"y,1\n", &table);
  CHECK(status.code() == DataError::kMalformedCsv);
  CHECK_THAT(status.message(), Catch::StartsWith("Line 2, character 4"));
}

TEST_CASE("a missing file is an I/O error, not a crash", "[data]") {
  TempDir dir;
  CsvTable table;
  CHECK(CsvTable::read(dir.file("absent.csv"), {}, &table).code() == DataError::kIo);
}

TEST_CASE("a several-megabyte CSV is read row by row with its types", "[data]") {
  TempDir dir;
  std::string csv = "WardName,WardCode,pfpr,population,note\n";
  const int rows = 80000;
  for (int i = 0; i < rows; ++i) {
    csv += "Ward " + std::to_string(i) + ",NISAGA" + std::to_string(i) + "," + std::to_string(i % 97) +
           ".5," + std::to_string(1000 + i) + ",\"a longer free-text note, with a comma\"\n";
  }
  REQUIRE(csv.size() > 5u << 20);
  CsvTable table;
  REQUIRE(readCsv(dir, csv, &table).ok());
  CHECK(table.rowCount() == static_cast<size_t>(rows));
  CHECK(table.column("pfpr")->type() == ColumnType::kNumeric);
  CHECK(table.column("population")->number(rows - 1) == 1000.0 + rows - 1);
  CHECK(table.column("note")->cell(rows - 1) == "a longer free-text note, with a comma");
}

TEST_CASE("UTF-8 validation rejects overlong forms, surrogates and truncated sequences", "[data]") {
  CHECK(isValidUtf8("plain ASCII"));
  CHECK(isValidUtf8("Kaduna \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8C\x8D"));
  CHECK(firstInvalidUtf8("ab\xC0\x80") == 2u);        // overlong NUL
  CHECK(firstInvalidUtf8("\xE0\x80\xAF") == 0u);      // overlong '/'
  CHECK(firstInvalidUtf8("x\xED\xA0\x80") == 1u);     // UTF-16 surrogate
  CHECK(firstInvalidUtf8("\xF4\x90\x80\x80") == 0u);  // above U+10FFFF
  CHECK(firstInvalidUtf8("ok\xE2\x82") == 2u);        // cut short
  CHECK(firstInvalidUtf8("\x80") == 0u);              // stray continuation byte
  CHECK(latin1ToUtf8("Caf\xE9") == "Caf\xC3\xA9");
}

}  // namespace
}  // namespace stickyproxy::backend
