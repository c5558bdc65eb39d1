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
#include "proxy/routing/session_key.h"

namespace stickyproxy {

// Holds its keys in fixed arrays: reading a returning session's cookies allocates nothing.
class RequestSession {
 public:
  // Reads the routing cookie (verified by `signer`) and, with key_source = app_cookie, the
  // app's cookie from `headers`. Without a valid routing cookie a key is minted.
  RequestSession(const RoutingConfig& routing, const CookieSigner& signer, const HeaderList& headers);

  // False when no key could be minted (the random source failed).
  bool valid() const { return key_length_ != 0 && proxy_key_length_ != 0; }
  // What the session is routed by ("app:" and the app's cookie, or the proxy's key); never logged.
  std::string_view key() const { return {key_, key_length_}; }
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
  static constexpr std::string_view kAppPrefix = "app:";
  std::string_view proxyKey() const { return {proxy_key_, proxy_key_length_}; }

  char key_[kAppPrefix.size() + kMaxCookieValueLength];
  size_t key_length_ = 0;
  char proxy_key_[kSessionKeyLength];  // the key in the proxy's cookie (minted when there was none)
  size_t proxy_key_length_ = 0;
  std::string key_short_;
  std::optional<CookiePin> presented_pin_;  // the pin of the client's verified cookie
  bool cookie_signed_ = false;  // the client sent a cookie this proxy signed
  std::string_view cookie_refused_;
  RouteRequest route_request_;
};

}  // namespace stickyproxy
