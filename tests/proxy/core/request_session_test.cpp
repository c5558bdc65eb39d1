#include "proxy/core/request_session.h"

#include <catch2/catch.hpp>

#include <string>

#include "proxy/routing/session_key.h"

namespace stickyproxy {
namespace {

const CookieSigner kSigner({std::string(64, 'a')});
const std::string kKey = "0123456789abcdef0123456789abcdef";

HeaderList cookies(const std::string& value) {
  HeaderList headers;
  headers.add("Host", "app.example");
  if (!value.empty()) headers.add("Cookie", value);
  return headers;
}

RouteDecision routedTo(const std::string& worker, int64_t since) {
  RouteDecision route;
  route.worker = worker;
  route.cookie_pin = CookiePin{worker, since};
  return route;
}

TEST_CASE("a request without a routing cookie gets a fresh key and a cookie pinning its route", "[request_session]") {
  RoutingConfig routing;
  RequestSession session(routing, kSigner, cookies("other=1"));
  REQUIRE(session.valid());
  CHECK(session.key().size() == 32);
  CHECK(session.routeRequest().fresh);
  CHECK(session.routeRequest().trusted);
  CHECK_FALSE(session.routeRequest().pin);
  CHECK(session.cookieRefusal().empty());
  CHECK(session.keyShort().find(session.key()) == std::string::npos);  // the log never sees the key
  CHECK(session.keyShort() == shortKeyHash(session.key()));
  std::string set_cookie = session.setCookieFor(routedTo("w2", 100), routing, kSigner, /*secure=*/true);
  CHECK(set_cookie.rfind("stickyproxy=", 0) == 0);
  CHECK(set_cookie.find("; Secure") != std::string::npos);
  CHECK(session.setCookieFor(RouteDecision{}, routing, kSigner, false).empty());  // nothing pinned
}

TEST_CASE("a signed cookie is the session; a forged one is refused and replaced", "[request_session]") {
  RoutingConfig routing;
  const std::string signed_value = kSigner.encode(RoutingCookie{kKey, CookiePin{"w3", 100}});
  RequestSession session(routing, kSigner, cookies("a=b; stickyproxy=" + signed_value));
  REQUIRE(session.valid());
  CHECK(session.key() == kKey);
  CHECK_FALSE(session.routeRequest().fresh);
  CHECK(session.routeRequest().pin == std::optional<CookiePin>(CookiePin{"w3", 100}));
  // The same pin: the client has its cookie. Another: a new one.
  CHECK(session.setCookieFor(routedTo("w3", 100), routing, kSigner, false).empty());
  CHECK_FALSE(session.setCookieFor(routedTo("w1", 200), routing, kSigner, false).empty());

  std::string forged = signed_value;
  forged.back() = forged.back() == '0' ? '1' : '0';
  RequestSession refused(routing, kSigner, cookies("stickyproxy=" + forged));
  CHECK(refused.cookieRefusal() == "forged_cookie");
  CHECK(refused.key() != kKey);
  CHECK(refused.routeRequest().fresh);
  RequestSession malformed(routing, kSigner, cookies("stickyproxy=not-a-cookie"));
  CHECK(malformed.cookieRefusal() == "malformed_cookie");
}

TEST_CASE("with key_source = app_cookie the app's cookie is the key", "[request_session]") {
  RoutingConfig routing;
  routing.key_source = KeySource::kAppCookie;
  routing.app_cookie_name = "session";
  RequestSession session(routing, kSigner, cookies("session=s-42"));
  CHECK(session.key() == "app:s-42");
  CHECK_FALSE(session.routeRequest().fresh);  // the app's session may have state already
  RequestSession without(routing, kSigner, cookies(""));
  CHECK(without.routeRequest().fresh);
  CHECK(without.key().rfind("app:", 0) == std::string::npos);
}

}  // namespace
}  // namespace stickyproxy
