#include "proxy/net/endpoint.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <string>

using namespace stickyproxy;

TEST_CASE("host() writes every IPv4 address as inet_ntop does", "[net]") {
  // The hand-written formatter against libc's, on the boundaries of one, two and three digits.
  const unsigned values[] = {0, 1, 9, 10, 11, 99, 100, 101, 199, 200, 249, 250, 255};
  for (unsigned a : values) {
    for (unsigned b : {0u, 9u, 10u, 100u, 255u}) {
      std::string text = std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(b) + "." + std::to_string(a);
      auto endpoint = Endpoint::parse(text + ":80");
      REQUIRE(endpoint);
      char expected[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&endpoint->tcp)->sin_addr, expected, sizeof expected);
      CHECK(endpoint->host() == expected);
      CHECK(endpoint->host() == text);
    }
  }
  CHECK(Endpoint::parse("[::1]:80")->host() == "::1");
  CHECK(Endpoint::unixPath("/run/w.sock").host().empty());
}

TEST_CASE("endpoints are equal when they name the same socket address", "[net]") {
  CHECK(*Endpoint::parse("127.0.0.1:9001") == *Endpoint::parse("127.0.0.1:9001"));
  CHECK(*Endpoint::parse("localhost:9001") == *Endpoint::parse("127.0.0.1:9001"));
  CHECK_FALSE(*Endpoint::parse("127.0.0.1:9001") == *Endpoint::parse("127.0.0.1:9002"));
  CHECK_FALSE(*Endpoint::parse("127.0.0.1:9001") == *Endpoint::parse("127.0.0.2:9001"));
  CHECK(*Endpoint::parse("[::1]:9001") == *Endpoint::parse("[::1]:9001"));
  CHECK_FALSE(*Endpoint::parse("[::1]:9001") == *Endpoint::parse("[::2]:9001"));
  CHECK_FALSE(*Endpoint::parse("[::1]:9001") == *Endpoint::parse("127.0.0.1:9001"));
  CHECK(Endpoint::unixPath("/run/a.sock") == Endpoint::unixPath("/run/a.sock"));
  CHECK_FALSE(Endpoint::unixPath("/run/a.sock") == Endpoint::unixPath("/run/b.sock"));
  CHECK_FALSE(Endpoint::unixPath("/run/a.sock") == *Endpoint::parse("127.0.0.1:9001"));
}
