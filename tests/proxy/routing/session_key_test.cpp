#include "proxy/routing/session_key.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "proxy/routing/stable_hash.h"

namespace stickyproxy {
namespace {

using namespace std::string_view_literals;

std::optional<std::string> cookie(std::string_view header, std::string_view name = "stickyproxy",
                                  size_t max_len = kMaxCookieValueLength) {
  const auto value = findCookie(header, name, max_len);
  if (!value) return std::nullopt;
  return std::string(*value);
}

TEST_CASE("new session keys are 32 lowercase hex chars and do not repeat", "[routing]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = newSessionKey();
    REQUIRE(key.size() == 32);
    CHECK(isValidProxyKey(key));
    seen.insert(key);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("only 32 lowercase hex chars are a valid proxy key", "[routing]") {
  CHECK(isValidProxyKey("0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(isValidProxyKey(""));
  CHECK_FALSE(isValidProxyKey("0123456789abcdef0123456789abcde"));    // 31
  CHECK_FALSE(isValidProxyKey("0123456789abcdef0123456789abcdef0"));  // 33
  CHECK_FALSE(isValidProxyKey("0123456789ABCDEF0123456789abcdef"));   // upper case
  CHECK_FALSE(isValidProxyKey("0123456789abcdeg0123456789abcdef"));   // 'g'
  CHECK_FALSE(isValidProxyKey("0123456789abcdef 123456789abcdef"));   // space
  CHECK_FALSE(isValidProxyKey("0123456789abcdef\0" "123456789abcdef"sv));
}

TEST_CASE("findCookie picks the named cookie among several", "[routing]") {
  CHECK(cookie("stickyproxy=abc") == "abc");
  CHECK(cookie("a=1; stickyproxy=abc; b=2") == "abc");
  CHECK(cookie("a=1; b=2; stickyproxy=abc") == "abc");
  CHECK(cookie("a=1; b=2") == std::nullopt);
  CHECK(cookie("") == std::nullopt);
  CHECK(cookie("a=1; b=2", "b") == "2");
}

TEST_CASE("findCookie tolerates missing and extra whitespace between pairs", "[routing]") {
  CHECK(cookie("a=1;stickyproxy=abc;b=2") == "abc");
  CHECK(cookie("a=1;  stickyproxy=abc  ; b=2") == "abc");
  CHECK(cookie("a=1;\tstickyproxy=abc") == "abc");
  CHECK(cookie("  stickyproxy = abc ") == "abc");
  CHECK(cookie("stickyproxy=abc;") == "abc");
  CHECK(cookie(";;stickyproxy=abc") == "abc");
}

TEST_CASE("findCookie strips the quotes of a quoted value", "[routing]") {
  CHECK(cookie("stickyproxy=\"abc\"") == "abc");
  CHECK(cookie("a=\"x\"; stickyproxy=\"abc\"; b=1") == "abc");
  CHECK(cookie("stickyproxy=\"\"") == std::nullopt);
  CHECK(cookie("stickyproxy=\"abc") == std::nullopt);
  CHECK(cookie("stickyproxy=abc\"") == std::nullopt);
  CHECK(cookie("stickyproxy=\"a\"bc\"") == std::nullopt);
}

TEST_CASE("findCookie does not match a name that merely ends or starts with the name",
          "[routing]") {
  CHECK(cookie("xstickyproxy=evil") == std::nullopt);
  CHECK(cookie("xstickyproxy=evil; stickyproxy=good") == "good");
  CHECK(cookie("stickyproxy2=evil") == std::nullopt);
  CHECK(cookie("Stickyproxy=evil") == std::nullopt);
  CHECK(cookie("a=stickyproxy=evil") == std::nullopt);
}

TEST_CASE("findCookie rejects an empty value", "[routing]") {
  CHECK(cookie("stickyproxy=") == std::nullopt);
  CHECK(cookie("stickyproxy=; a=1") == std::nullopt);
  CHECK(cookie("stickyproxy") == std::nullopt);
}

TEST_CASE("findCookie rejects values longer than the limit", "[routing]") {
  const std::string at_limit(256, 'a');
  CHECK(cookie("stickyproxy=" + at_limit) == at_limit);
  CHECK(cookie("stickyproxy=" + at_limit + "a") == std::nullopt);
  CHECK(cookie("stickyproxy=abcd", "stickyproxy", 3) == std::nullopt);
  CHECK(cookie("stickyproxy=abc", "stickyproxy", 3) == "abc");
  CHECK(cookie("stickyproxy=\"abc\"", "stickyproxy", 3) == "abc");
}

TEST_CASE("findCookie rejects values with bytes outside cookie-octet", "[routing]") {
  CHECK(cookie("stickyproxy=ab cd") == std::nullopt);            // space
  CHECK(cookie("stickyproxy=ab\tcd") == std::nullopt);           // tab
  CHECK(cookie("stickyproxy=ab,cd") == std::nullopt);            // comma
  CHECK(cookie("stickyproxy=\"ab;cd\"") == std::nullopt);        // semicolon inside quotes
  CHECK(cookie("stickyproxy=ab\\cd") == std::nullopt);           // backslash
  CHECK(cookie("stickyproxy=ab\x7f" "cd") == std::nullopt);      // DEL
  CHECK(cookie("stickyproxy=ab\x80" "cd") == std::nullopt);      // > 0x7f
  CHECK(cookie("stickyproxy=\xc3\xa9t\xc3\xa9") == std::nullopt);  // UTF-8
  CHECK(cookie("stickyproxy=ab\x01" "cd") == std::nullopt);      // control
  CHECK(cookie("stickyproxy=ab\0cd"sv) == std::nullopt);         // NUL
  // A bare semicolon ends the value: what precedes it is a valid cookie.
  CHECK(cookie("stickyproxy=ab;cd") == "ab");
  // Every other visible ASCII byte is allowed, '=' included.
  CHECK(cookie("stickyproxy=!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~") ==
        "!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~");
}

TEST_CASE("findCookie lets the first of duplicate cookies win", "[routing]") {
  CHECK(cookie("stickyproxy=first; stickyproxy=second") == "first");
  CHECK(cookie("stickyproxy=first;stickyproxy=second") == "first");
  // The first occurrence decides even when it is invalid.
  CHECK(cookie("stickyproxy=; stickyproxy=second") == std::nullopt);
}

TEST_CASE("findCookie returns a view into the header", "[routing]") {
  const std::string header = "a=1; stickyproxy=abc";
  const auto value = findCookie(header, "stickyproxy");
  REQUIRE(value.has_value());
  CHECK(value->data() - header.data() == 17);
}

TEST_CASE("findCookie with an empty name finds nothing", "[routing]") {
  CHECK(cookie("=abc", "") == std::nullopt);
}

TEST_CASE("Set-Cookie carries path, max-age, HttpOnly and SameSite, Secure on request",
          "[routing]") {
  CHECK(buildSetCookie("stickyproxy", "0123456789abcdef0123456789abcdef",
                       std::chrono::seconds(2592000), false) ==
        "stickyproxy=0123456789abcdef0123456789abcdef; Path=/; Max-Age=2592000; HttpOnly; "
        "SameSite=Lax");
  CHECK(buildSetCookie("sp", "k", std::chrono::seconds(60), true) ==
        "sp=k; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
  CHECK(buildSetCookie("sp", "k", std::chrono::seconds(-5), false) ==
        "sp=k; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
}

TEST_CASE("a Set-Cookie value reads back through findCookie", "[routing]") {
  const std::string key = newSessionKey();
  const std::string set_cookie = buildSetCookie("stickyproxy", key, std::chrono::hours(1), true);
  const std::string pair = set_cookie.substr(0, set_cookie.find(';'));
  CHECK(cookie("other=1; " + pair) == key);
}

TEST_CASE("short key hash is the first 8 hex chars of the stable hash, never the key",
          "[routing]") {
  CHECK(shortKeyHash("abc") == "44bc2cf5");  // stableHash("abc") = 0x44bc2cf5ad770999
  CHECK(shortKeyHash("") == "ef46db37");
  CHECK(shortKeyHashOf(0x44bc2cf5ad770999ULL) == "44bc2cf5");
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string short_hash = shortKeyHash(key);
  char full[17];
  std::snprintf(full, sizeof full, "%016llx", static_cast<unsigned long long>(stableHash(key)));
  CHECK(short_hash == std::string(full, 8));
  CHECK(key.find(short_hash) == std::string::npos);
}

}  // namespace
}  // namespace stickyproxy
