// The session a client request belongs to, read from its cookies: the routing key and what the
// router needs of it, and the Set-Cookie that keeps the browser on its route.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/config/config.h"
#include "proxy/http/http_message.h"
#include "proxy/routing/router.h"
#include "proxy/routing/routing_cookie.h"

namespace stickyproxy {

class RequestSession {
 public:
  // Reads the routing cookie (verified by `signer`) and, with key_source = app_cookie, the
  // app's cookie from `headers`. Without a valid routing cookie a key is minted.
  RequestSession(const RoutingConfig& routing, const CookieSigner& signer, const HeaderList& headers);

  // False when no key could be minted (the random source failed).
  bool valid() const { return !key_.empty() && !proxy_key_.empty(); }
  // What the session is routed by; never logged.
  const std::string& key() const { return key_; }
  // shortKeyHash(key()), for the access log.
  const std::string& keyShort() const { return key_short_; }
  const RouteRequest& routeRequest() const { return route_request_; }
  // Why the client's routing cookie was ignored ("forged_cookie", "malformed_cookie"), or "".
  std::string_view cookieRefusal() const { return cookie_refused_; }

  // The Set-Cookie value for a response routed by `route` (marked Secure when `secure`), or ""
  // when the client holds that cookie already or the route pins nothing.
  std::string setCookieFor(const RouteDecision& route, const RoutingConfig& routing, const CookieSigner& signer,
                           bool secure) const;

 private:
  std::string key_;
  std::string key_short_;
  std::string proxy_key_;  // the key in the proxy's cookie (minted when there was none)
  std::optional<CookiePin> presented_pin_;  // the pin of the client's verified cookie
  bool cookie_signed_ = false;  // the client sent a cookie this proxy signed
  std::string cookie_refused_;
  RouteRequest route_request_;
};

}  // namespace stickyproxy
