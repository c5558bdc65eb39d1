#include "tests/integration/routing_cookies.h"

#include <sys/stat.h>

#include "proxy/net/file_util.h"
#include "tests/integration/harness.h"

namespace stickyproxy::integration {

void writeTestRoutingSecret(const std::string& path) {
  std::string error;
  if (!writeFileAtomically(path, std::string(kTestRoutingSecret) + "\n", &error, 0600)) {
    throw HarnessError("cannot write the routing secret: " + error);
  }
}

std::string signedCookie(const std::string& key, const std::optional<CookiePin>& pin) {
  static const CookieSigner signer({std::string(kTestRoutingSecret)});
  return signer.encode(RoutingCookie{key, pin});
}

std::string keyOfCookie(std::string_view value) {
  return value.size() >= 32 ? std::string(value.substr(0, 32)) : std::string();
}

std::string pinOfCookie(std::string_view value) {
  static const CookieSigner signer({std::string(kTestRoutingSecret)});
  RoutingCookie cookie;
  if (signer.decode(value, &cookie) != CookieCheck::kSigned || !cookie.pin) return {};
  return cookie.pin->worker;
}

}  // namespace stickyproxy::integration
