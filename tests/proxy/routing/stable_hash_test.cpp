#include "proxy/routing/stable_hash.h"

#include <catch2/catch.hpp>

#include <string>

namespace stickyproxy {
namespace {

TEST_CASE("stable hash of the empty string is XXH64's published seed-0 value", "[routing]") {
  CHECK(stableHash("") == 0xEF46DB3751D8E999ull);
}

TEST_CASE("stable hash keeps its pinned values so persisted hashes survive upgrades",
          "[routing]") {
  // Computed once with this implementation and pinned: a change here remaps every session and
  // invalidates every saved session file.
  CHECK(stableHash("abc") == 0x44BC2CF5AD770999ull);
  CHECK(stableHash("w1#0") == 0xFED5760F83F217B3ull);
  CHECK(stableHash("stickyproxy") == 0xFF047DB4F8D1B7A2ull);
}

TEST_CASE("stable hash depends on every byte, including embedded NULs", "[routing]") {
  const std::string with_nul("a\0b", 3);
  CHECK(stableHash(with_nul) != stableHash("a"));
  CHECK(stableHash(with_nul) != stableHash("ab"));
  CHECK(stableHash(std::string_view("abcd", 3)) == stableHash("abc"));
}

}  // namespace
}  // namespace stickyproxy
