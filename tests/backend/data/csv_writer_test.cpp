#include "backend/data/csv_writer.h"

#include <catch2/catch.hpp>

#include <limits>
#include <string>

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

}  // namespace
}  // namespace stickyproxy::backend
