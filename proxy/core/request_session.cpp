#include "proxy/core/request_session.h"

#include <chrono>
#include <utility>

#include "proxy/routing/session_key.h"
#include "proxy/routing/stable_hash.h"

namespace stickyproxy {

RequestSession::RequestSession(const RoutingConfig& routing, const CookieSigner& signer, const HeaderList& headers) {
  std::optional<std::string_view> app_key;
  bool have_cookie = false;
  for (const Header& field : headers.fields()) {
    if (!equalsIgnoreCase(field.name, "Cookie")) continue;
    if (!have_cookie) {
      if (auto value = findCookie(field.value, routing.cookie_name)) {
        have_cookie = true;
        RoutingCookieView cookie;
        CookieCheck check = signer.decode(*value, &cookie);
        if (check == CookieCheck::kSigned || (check == CookieCheck::kLegacy && routing.accept_unsigned_keys)) {
          // A verified key has exactly kSessionKeyLength characters.
          proxy_key_length_ = cookie.key.copy(proxy_key_, sizeof proxy_key_);
          if (cookie.pinned) presented_pin_ = CookiePin{std::string(cookie.pin_worker), cookie.pin_since_s};
          cookie_signed_ = check == CookieCheck::kSigned;
        } else {
          cookie_refused_ = check == CookieCheck::kForged ? "forged_cookie" : "malformed_cookie";
        }
      }
    }
    if (routing.key_source == KeySource::kAppCookie && !app_key) {
      app_key = findCookie(field.value, routing.app_cookie_name);
    }
  }
  bool fresh = false;
  if (proxy_key_length_ == 0) {
    // No valid routing cookie: mint a key so every later request of this browser lands here.
    std::string minted = newSessionKey();
    proxy_key_length_ = std::string_view(minted).copy(proxy_key_, sizeof proxy_key_);
    fresh = proxy_key_length_ != 0;
  }
  if (app_key) {
    // findCookie() returns at most kMaxCookieValueLength characters: the key fits.
    kAppPrefix.copy(key_, kAppPrefix.size());
    key_length_ = kAppPrefix.size() + app_key->copy(key_ + kAppPrefix.size(), kMaxCookieValueLength);
  } else {
    key_length_ = proxyKey().copy(key_, sizeof key_);
  }
  route_request_.key_hash = stableHash(key());
  route_request_.fresh = fresh && !app_key;
  // Only a browser holding a cookie this proxy signed (or just given one) may leave state here.
  route_request_.trusted = cookie_signed_ || fresh;
  route_request_.pin = presented_pin_;
  key_short_ = shortKeyHashOf(route_request_.key_hash);  // shortKeyHash(key()) without hashing it again
}

std::string RequestSession::setCookieFor(const RouteDecision& route, const RoutingConfig& routing,
                                         const CookieSigner& signer, bool secure) const {
  if (!route.cookie_pin) return "";
  if (cookie_signed_ && presented_pin_ == route.cookie_pin) return "";  // the client has it already
  std::string value = signer.encode(RoutingCookie{std::string(proxyKey()), route.cookie_pin});
  return buildSetCookie(routing.cookie_name, value,
                        std::chrono::duration_cast<std::chrono::seconds>(routing.cookie_max_age), secure);
}

}  // namespace stickyproxy
