#include "proxy/core/client_limiter.h"

#include <catch2/catch.hpp>

#include <string>

namespace stickyproxy {
namespace {

using Clock = ClientLimiter::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

ClientKey ip(const std::string& text) {
  std::optional<ClientKey> key = ClientKey::parse(text);
  REQUIRE(key);
  return *key;
}

TEST_CASE("client keys: IPv4, IPv6 and IPv4-mapped IPv6 are one key per address", "[client_limiter]") {
  CHECK(ip("10.0.0.7") == ip("::ffff:10.0.0.7"));
  CHECK_FALSE(ip("10.0.0.7") == ip("10.0.0.8"));
  CHECK(ip("2001:db8::1") == ip("2001:0db8:0:0::1"));
  CHECK_FALSE(ip("2001:db8::1") == ip("2001:db8::2"));
  CHECK(ip("2001:db8::1").family == 6);
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "host", "10.0.0.7:80", "[::1]", " 10.0.0.7", "::1%lo"}) {
    CHECK_FALSE(ClientKey::parse(bad));
  }
  CHECK(ClientKeyHash{}(ip("10.0.0.7")) == ClientKeyHash{}(ip("::ffff:10.0.0.7")));
}

TEST_CASE("per_client_connections: within, then over the limit (429), then closed at twice it", "[client_limiter]") {
  ClientLimiter limiter(ClientLimits{2, 0, seconds(1), 100});
  auto now = Clock::now();
  ClientKey a = ip("192.0.2.1");
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kOverLimit);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kOverLimit);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kClose);
  // Another client is not affected.
  CHECK(limiter.admitConnection(ip("192.0.2.2"), now) == ConnectionAdmission::kAdmitted);
  // A closed connection makes room for one more.
  limiter.releaseConnection(a, ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kClose);
  limiter.releaseConnection(a, ConnectionAdmission::kOverLimit);
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kOverLimit);
  // No limit, or not an IP address: not counted.
  limiter.setLimits(ClientLimits{0, 0, seconds(1), 100});
  CHECK(limiter.admitConnection(a, now) == ConnectionAdmission::kUncounted);
  limiter.setLimits(ClientLimits{2, 0, seconds(1), 100});
  CHECK(limiter.admitConnection(ClientKey{}, now) == ConnectionAdmission::kUncounted);
}

TEST_CASE("per_client_rate: a bucket of `rate` requests refilled over the period, with Retry-After", "[client_limiter]") {
  ClientLimiter limiter(ClientLimits{0, 10, seconds(10), 100});
  auto start = Clock::now();
  ClientKey a = ip("198.51.100.9");
  for (int i = 0; i < 10; ++i) CHECK_FALSE(limiter.takeRequest(a, start));
  std::optional<uint32_t> wait = limiter.takeRequest(a, start);
  REQUIRE(wait);
  CHECK(*wait == 1);  // one request's worth refills in 10 s / 10
  CHECK_FALSE(limiter.takeRequest(ip("198.51.100.10"), start));  // others keep theirs
  // Half a token later it is still refused, with the wait rounded up.
  CHECK(limiter.takeRequest(a, start + milliseconds(500)) == std::optional<uint32_t>(1));
  CHECK_FALSE(limiter.takeRequest(a, start + milliseconds(1000)));
  CHECK(limiter.takeRequest(a, start + milliseconds(1000)));
  // A full period later the whole burst is back, and no more.
  auto later = start + seconds(60);
  for (int i = 0; i < 10; ++i) CHECK_FALSE(limiter.takeRequest(a, later));
  CHECK(limiter.takeRequest(a, later));

  ClientLimiter slow(ClientLimits{0, 1, seconds(30), 100});
  CHECK_FALSE(slow.takeRequest(a, start));
  CHECK(slow.takeRequest(a, start) == std::optional<uint32_t>(30));
  CHECK(slow.takeRequest(a, start + seconds(20)) == std::optional<uint32_t>(10));
}

TEST_CASE("IPv6 clients are limited per /64", "[client_limiter]") {
  ClientLimiter limiter(ClientLimits{1, 2, seconds(60), 100});
  auto now = Clock::now();
  CHECK(limiter.admitConnection(ip("2001:db8:1:2::1"), now) == ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(ip("2001:db8:1:2:ffff::9"), now) == ConnectionAdmission::kOverLimit);
  CHECK(limiter.admitConnection(ip("2001:db8:1:3::1"), now) == ConnectionAdmission::kAdmitted);
  limiter.releaseConnection(ip("2001:db8:1:2::1"), ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(ip("2001:db8:1:2::77"), now) == ConnectionAdmission::kAdmitted);
  CHECK_FALSE(limiter.takeRequest(ip("2001:db8:1:2::a"), now));
  CHECK_FALSE(limiter.takeRequest(ip("2001:db8:1:2::b"), now));
  CHECK(limiter.takeRequest(ip("2001:db8:1:2::c"), now));
  CHECK_FALSE(limiter.takeRequest(ip("2001:db8:1:4::c"), now));
  // IPv4 addresses stay one each.
  CHECK(limiter.admitConnection(ip("192.0.2.1"), now) == ConnectionAdmission::kAdmitted);
  CHECK(limiter.admitConnection(ip("192.0.2.2"), now) == ConnectionAdmission::kAdmitted);
}

TEST_CASE("the client table has a ceiling: idle clients go first, busy ones stay", "[client_limiter]") {
  ClientLimiter limiter(ClientLimits{1, 5, seconds(60), 3});
  auto now = Clock::now();
  ClientKey busy = ip("203.0.113.1");
  REQUIRE(limiter.admitConnection(busy, now) == ConnectionAdmission::kAdmitted);
  for (int i = 2; i <= 100; ++i) limiter.takeRequest(ip("203.0.113." + std::to_string(i)), now);
  CHECK(limiter.size() == 3);
  CHECK(limiter.evictions() == 97);
  // The busy client is still counted: a second connection is over its limit.
  CHECK(limiter.admitConnection(busy, now) == ConnectionAdmission::kOverLimit);

  // Every entry busy: a new client is let through uncounted rather than evicting one.
  ClientLimiter full(ClientLimits{1, 5, seconds(60), 2});
  REQUIRE(full.admitConnection(ip("203.0.113.1"), now) == ConnectionAdmission::kAdmitted);
  REQUIRE(full.admitConnection(ip("203.0.113.2"), now) == ConnectionAdmission::kAdmitted);
  CHECK(full.admitConnection(ip("203.0.113.3"), now) == ConnectionAdmission::kUncounted);
  CHECK_FALSE(full.takeRequest(ip("203.0.113.3"), now));
  CHECK(full.untracked() == 2);
  CHECK(full.size() == 2);
  // Once one closes, the newcomer gets the room.
  full.releaseConnection(ip("203.0.113.1"), ConnectionAdmission::kAdmitted);
  CHECK(full.admitConnection(ip("203.0.113.3"), now) == ConnectionAdmission::kAdmitted);
}

TEST_CASE("idle clients whose bucket has refilled are forgotten", "[client_limiter]") {
  ClientLimiter limiter(ClientLimits{0, 5, seconds(1), 1000});
  auto now = Clock::now();
  for (int i = 1; i <= 50; ++i) limiter.takeRequest(ip("192.0.2." + std::to_string(i)), now);
  CHECK(limiter.size() == 50);
  // A newcomer a period later finds the others expired: nothing they held is lost.
  limiter.takeRequest(ip("198.51.100.1"), now + seconds(2));
  CHECK(limiter.size() == 1);
  CHECK(limiter.evictions() == 0);
}

}  // namespace
}  // namespace stickyproxy
