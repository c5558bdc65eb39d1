#include "load/cookie_jar.h"

#include <catch2/catch.hpp>

using stickyproxy::load::CookieJar;

TEST_CASE("the jar keeps what Set-Cookie stores and sends it back in first-set order", "[load]") {
  CookieJar jar;
  CHECK(jar.header().empty());
  CHECK(jar.take("stickyproxy=k1.w2.1.mac; Path=/; HttpOnly; SameSite=Lax") == "stickyproxy");
  CHECK(jar.take("chatmrpt_session=abc; Path=/") == "chatmrpt_session");
  CHECK(jar.header() == "stickyproxy=k1.w2.1.mac; chatmrpt_session=abc");
  jar.take("stickyproxy=k1.w3.2.mac2; Max-Age=31536000");
  CHECK(jar.header() == "stickyproxy=k1.w3.2.mac2; chatmrpt_session=abc");
  CHECK(*jar.find("chatmrpt_session") == "abc");
  CHECK(jar.find("other") == nullptr);
}

TEST_CASE("Max-Age=0, a negative Max-Age, the epoch and an empty value remove a cookie", "[load]") {
  CookieJar jar;
  for (const char* removal : {"a=; Path=/", "a=x; Max-Age=0", "a=x; max-age=-1", "a=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"}) {
    jar.take("a=1");
    REQUIRE(jar.find("a") != nullptr);
    CHECK(jar.take(removal) == "a");
    CHECK(jar.find("a") == nullptr);
  }
}

TEST_CASE("quoted values lose their quotes; fields without a name are ignored", "[load]") {
  CookieJar jar;
  jar.take("q=\"quoted value\"; Secure");
  CHECK(*jar.find("q") == "quoted value");
  CHECK(jar.take("no equals sign").empty());
  CHECK(jar.take("=value").empty());
  CHECK(jar.header() == "q=quoted value");
}
