#include "proxy/net/json_document.h"

#include <catch2/catch.hpp>

namespace stickyproxy {
namespace {

TEST_CASE("parseJsonDocument reads a document, and turns what picojson throws on into an error", "[json]") {
  picojson::value root;
  CHECK(parseJsonDocument(" {\"a\": [1, 2.5]}\r\n\t ", &root).empty());
  REQUIRE(root.is<picojson::object>());
  CHECK(root.get("a").get<picojson::array>().size() == 2);

  CHECK(parseJsonDocument("{\"pid\": 1e999}", &root) == "a number out of range");
  CHECK(root.is<picojson::null>());
  CHECK(parseJsonDocument("[-2E222222222222222222]", &root) == "a number out of range");
  CHECK(parseJsonDocument("{} {}", &root) == "trailing data after the JSON document");
  CHECK_FALSE(parseJsonDocument("{\"a\":", &root).empty());
  CHECK_FALSE(parseJsonDocument("", &root).empty());
  CHECK(parseJsonDocument("1e308", &root).empty());
}

}  // namespace
}  // namespace stickyproxy
