#include "backend/viz/html_text.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace stickyproxy::backend {
namespace {

std::string scriptJson(std::string_view text) {
  std::string out;
  appendScriptJsonString(&out, text);
  return out;
}

TEST_CASE("markup escaping covers text and both kinds of quoted attribute", "[viz]") {
  CHECK(htmlEscaped("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
  CHECK(htmlEscaped("\"onmouseover=alert(1) x='y' & z") ==
        "&quot;onmouseover=alert(1) x=&#39;y&#39; &amp; z");
  CHECK(htmlEscaped("Kaduna\nNorth") == "Kaduna\nNorth");
  CHECK(htmlEscaped("Ọ̀yọ́ Ẹ̀kìtì") == "Ọ̀yọ́ Ẹ̀kìtì");  // well-formed UTF-8 passes unchanged
  // Stray, overlong and cut-short sequences each become U+FFFD.
  CHECK(htmlEscaped("a\xFF!") == "a\xEF\xBF\xBD!");
  CHECK(htmlEscaped("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(htmlEscaped("end\xE2\x80") == "end\xEF\xBF\xBD\xEF\xBF\xBD");
  std::string appended = "x";
  appendHtmlEscaped(&appended, "<");
  CHECK(appended == "x&lt;");
}

TEST_CASE("JSON for a script element cannot close it, open a comment or break a line", "[viz]") {
  CHECK(scriptJson("</script>") == R"("\u003c/script\u003e")");
  CHECK(scriptJson("<!--") == R"("\u003c!--")");
  CHECK(scriptJson("a & b") == R"("a \u0026 b")");
  CHECK(scriptJson("\"quoted\" back\\slash") == R"("\"quoted\" back\\slash")");
  CHECK(scriptJson("tab\tline\ncr\r") == R"("tab\tline\ncr\r")");
  CHECK(scriptJson(std::string_view("nul\0bell\x07", 9)) == R"("nul\u0000bell\u0007")");
  CHECK(scriptJson("\xE2\x80\xA8|\xE2\x80\xA9|\xE2\x80\xA6") == "\"\\u2028|\\u2029|\xE2\x80\xA6\"");
  CHECK(scriptJson("bad\xFF") == "\"bad\xEF\xBF\xBD\"");
  CHECK(scriptJson("") == R"("")");
}

TEST_CASE("tenths are written in the shortest exact form", "[viz]") {
  auto tenths = [](int64_t value) {
    std::string out;
    appendTenths(&out, value);
    return out;
  };
  CHECK(tenths(0) == "0");
  CHECK(tenths(5) == ".5");
  CHECK(tenths(-5) == "-.5");
  CHECK(tenths(125) == "12.5");
  CHECK(tenths(-30) == "-3");
  CHECK(tenths(8000) == "800");
  CHECK(tenths(std::numeric_limits<int64_t>::min()) == "-922337203685477580.8");
}

TEST_CASE("display numbers are short, exact enough and locale-free", "[viz]") {
  CHECK(formatDisplayNumber(0) == "0");
  CHECK(formatDisplayNumber(-0.0) == "0");
  CHECK(formatDisplayNumber(0.53214) == "0.5321");
  CHECK(formatDisplayNumber(12.345) == "12.35");
  CHECK(formatDisplayNumber(123456.7) == "123457");
  CHECK(formatDisplayNumber(-0.25) == "-0.25");
  CHECK(formatDisplayNumber(1.0) == "1");
  CHECK(formatDisplayNumber(0.99999) == "1");
  CHECK(formatDisplayNumber(0.00001234) == "0.00001234");
  CHECK(formatDisplayNumber(-0.00001) == "-0.00001");
  CHECK(formatDisplayNumber(1.5e-12) == "1.5e-12");
  CHECK(formatDisplayNumber(1e300).size() == 301);
  CHECK(formatDisplayNumber(std::numeric_limits<double>::infinity()) == "Infinity");
  CHECK(formatDisplayNumber(-std::numeric_limits<double>::infinity()) == "-Infinity");
  CHECK(formatDisplayNumber(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

}  // namespace
}  // namespace stickyproxy::backend
