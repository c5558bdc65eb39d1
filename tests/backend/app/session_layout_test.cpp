#include "backend/app/session_layout.h"

#include <catch2/catch.hpp>

using namespace stickyproxy::backend;

TEST_CASE("isSafeFileName accepts plain result names and refuses anything that could leave the directory",
          "[app]") {
  for (const char* good : {"box_plot.html", "analysis_vulnerability_rankings.csv", "composite_map_page_2.html",
                           "chatmrpt_results.zip", "a", "variable_map_pfpr_3.html"}) {
    INFO(good);
    CHECK(isSafeFileName(good));
  }
  for (const char* bad : {"", "..", "../session.json", "..%2fsession.json", "a/b.csv", ".hidden", "-rf",
                          "a..b.csv", "x\\y.csv", "name with space.csv", "%2e%2e", "file\n.csv", "caf\xc3\xa9.csv"}) {
    INFO(bad);
    CHECK_FALSE(isSafeFileName(bad));
  }
  CHECK(isSafeFileName(std::string(128, 'a')));
  CHECK_FALSE(isSafeFileName(std::string(129, 'a')));
}

TEST_CASE("isValidUploadId takes 8 to 64 letters, digits, dashes and underscores", "[app]") {
  CHECK(isValidUploadId("0123456789abcdef0123456789abcdef"));
  CHECK(isValidUploadId("upload_1-A"));
  CHECK_FALSE(isValidUploadId("short"));
  CHECK_FALSE(isValidUploadId(std::string(65, 'a')));
  CHECK_FALSE(isValidUploadId("../../../etc"));
  CHECK_FALSE(isValidUploadId("abcdefgh/"));
}
