#include "proxy/core/client_address.h"

#include <catch2/catch.hpp>

#include "proxy/config/value_parser.h"

namespace stickyproxy {
namespace {

Endpoint peer(const std::string& text) {
  std::optional<Endpoint> endpoint = Endpoint::parse(text);
  REQUIRE(endpoint);
  return *endpoint;
}

std::vector<Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<Cidr> list;
  for (const char* text : texts) {
    std::string error;
    std::optional<Cidr> cidr = parseCidr(text, &error);
    REQUIRE(cidr);
    list.push_back(*cidr);
  }
  return list;
}

HeaderList forwardedFor(std::initializer_list<const char*> values) {
  HeaderList headers;
  headers.add("Host", "example.org");
  for (const char* value : values) headers.add("X-Forwarded-For", value);
  return headers;
}

std::string clientOf(const std::vector<Cidr>& trusted, const std::string& from, const HeaderList& headers) {
  ClientAddress client = clientAddressOf(trusted, peer(from), headers);
  CHECK(client.key.valid());
  if (client.key.valid()) {
    std::optional<ClientKey> parsed = ClientKey::parse(client.text);
    REQUIRE(parsed);
    CHECK(*parsed == client.key);
  }
  return client.text;
}

TEST_CASE("the client of an untrusted peer is the peer, whatever X-Forwarded-For says", "[client_address]") {
  auto trusted = cidrs({"10.0.0.0/8"});
  CHECK(clientOf(trusted, "192.0.2.5:4000", forwardedFor({"203.0.113.9"})) == "192.0.2.5");
  CHECK(clientOf({}, "10.1.1.1:4000", forwardedFor({"203.0.113.9"})) == "10.1.1.1");
  CHECK(clientOf(trusted, "[2001:db8::5]:4000", {}) == "2001:db8::5");
  CHECK(clientAddressOf(trusted, Endpoint::unixPath("/run/x.sock"), {}).text == "unix");
  CHECK_FALSE(clientAddressOf(trusted, Endpoint::unixPath("/run/x.sock"), {}).key.valid());
}

TEST_CASE("behind trusted proxies the client is the rightmost untrusted X-Forwarded-For address", "[client_address]") {
  auto trusted = cidrs({"10.0.0.0/8", "2001:db8:ffff::/48"});
  const std::string alb = "10.0.3.4:5000";
  CHECK(clientOf(trusted, alb, forwardedFor({"203.0.113.9"})) == "203.0.113.9");
  // A client-supplied entry on the left cannot hide the real client.
  CHECK(clientOf(trusted, alb, forwardedFor({"1.2.3.4, 203.0.113.9"})) == "203.0.113.9");
  // Trusted hops (CloudFront -> ALB both inside trusted) are skipped.
  CHECK(clientOf(trusted, alb, forwardedFor({"1.2.3.4, 203.0.113.9, 10.0.9.9"})) == "203.0.113.9");
  // Several fields form one list, in order.
  CHECK(clientOf(trusted, alb, forwardedFor({"1.2.3.4", "203.0.113.9, 10.0.9.9"})) == "203.0.113.9");
  // Ports and brackets, as some balancers add them.
  CHECK(clientOf(trusted, alb, forwardedFor({"203.0.113.9:51234"})) == "203.0.113.9");
  CHECK(clientOf(trusted, alb, forwardedFor({"[2001:db8::77]:443"})) == "2001:db8::77");
  CHECK(clientOf(trusted, alb, forwardedFor({"2001:db8::77"})) == "2001:db8::77");
  // Garbage stops the walk, only trusted hops or no header at all: the proxies' own request. It
  // is not limited (no key); the log names the nearest address seen.
  auto own = [&](std::initializer_list<const char*> values, const std::string& logged) {
    ClientAddress client = clientAddressOf(trusted, peer(alb), forwardedFor(values));
    CHECK_FALSE(client.key.valid());
    CHECK(client.text == logged);
  };
  own({"203.0.113.9, unknown, 10.0.9.9"}, "10.0.9.9");
  own({"nonsense"}, "10.0.3.4");
  own({"203.0.113.9,"}, "10.0.3.4");
  own({"10.0.0.1, 10.0.0.2"}, "10.0.0.1");
  own({}, "10.0.3.4");
}

}  // namespace
}  // namespace stickyproxy
