#include "backend/data/csv_format.h"

#include <catch2/catch.hpp>

#include <string>

#include "backend/data/csv_table.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::backend {
namespace {

TEST_CASE("plain fields are written as they are", "[data]") {
  CHECK_FALSE(csv::needsQuoting("Kano Municipal"));
  CHECK(csv::quoteField("Kano Municipal") == "Kano Municipal");
  CHECK(csv::quoteField("") == "");
  CHECK(csv::quoteField("O'Brien; x") == "O'Brien; x");
  CHECK(csv::quoteField("tab\there") == "tab\there");
}

TEST_CASE("fields with commas, quotes or line breaks are quoted", "[data]") {
  CHECK(csv::needsQuoting("Gwale, North"));
  CHECK(csv::quoteField("Gwale, North") == "\"Gwale, North\"");
  CHECK(csv::quoteField("the \"Old\" town") == "\"the \"\"Old\"\" town\"");
  CHECK(csv::quoteField("\"") == "\"\"\"\"");
  CHECK(csv::quoteField("two\nlines") == "\"two\nlines\"");
  CHECK(csv::quoteField("carriage\rreturn") == "\"carriage\rreturn\"");
  CHECK(csv::quoteField("a,\"b\"\r\nc") == "\"a,\"\"b\"\"\r\nc\"");
}

TEST_CASE("appendField adds to what is there", "[data]") {
  std::string row = "K1";
  row += csv::kDelimiter;
  csv::appendField(row, "Dala, East");
  CHECK(row == "K1,\"Dala, East\"");
}

TEST_CASE("what the format writes, the reader reads back unchanged", "[data]") {
  stickyproxy::testing::TempDir dir;
  const std::vector<std::string> cells = {"plain", "Gwale, North", "the \"Old\" town", "two\nlines",
                                          "a,\"b\"\nc", "", "trailing \"", "\"leading"};
  std::string text = "name";
  text += csv::kRecordEnd;
  for (const std::string& cell : cells) {
    csv::appendField(text, cell);
    text += csv::kRecordEnd;
  }
  stickyproxy::testing::writeFile(dir.file("round.csv"), text);
  CsvTable table;
  REQUIRE(CsvTable::read(dir.file("round.csv"), {}, &table).ok());
  REQUIRE(table.rowCount() == cells.size() - 1);  // the reader skips the blank line of ""
  size_t row = 0;
  for (const std::string& cell : cells) {
    if (cell.empty()) continue;
    CHECK(table.columns()[0].cell(row++) == cell);
  }
}

}  // namespace
}  // namespace stickyproxy::backend
