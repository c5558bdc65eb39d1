// Routing cookies for integration tests: the secret every test proxy signs with, and cookie
// values made with it, so that a test can present sessions of its own choosing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/routing/routing_cookie.h"

namespace stickyproxy::integration {

// The secret ProxyUnderTest writes to <dir>/routing-secret and names in routing.secret_file.
inline constexpr std::string_view kTestRoutingSecret = "integration-test-routing-secret-0123456789abcdef";

// Writes kTestRoutingSecret to `path` with mode 0600.
void writeTestRoutingSecret(const std::string& path);

// The cookie value for session `key` (32 lowercase hex), signed with kTestRoutingSecret;
// pinned to `pin` when given.
std::string signedCookie(const std::string& key, const std::optional<CookiePin>& pin = std::nullopt);

// The session key inside a cookie value (its first 32 characters), or "" when it has none.
std::string keyOfCookie(std::string_view value);

// The worker a cookie value is pinned to, or "" when it is unpinned or malformed.
std::string pinOfCookie(std::string_view value);

}  // namespace stickyproxy::integration
