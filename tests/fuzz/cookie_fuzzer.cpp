// Fuzz target "cookie": the Cookie header as the proxy reads it (proxy/routing): findCookie()
// picks the routing cookie out of a client's Cookie field and CookieSigner::decode() verifies it.
//
// Input: byte 0 picks the cookie name looked for (the default "stickyproxy" or an app cookie
// name) and a small length cap (bit 7); the rest is one Cookie field value.
//
// Invariants: a value found lies inside the field, is non-empty, within the cap and made of
// cookie-octets; decode() of a signed value gives back a cookie that encodes to exactly that
// value, of a legacy value its key; and a cookie made from the input bytes, encoded, decodes to
// itself.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net/hex.h"
#include "proxy/routing/routing_cookie.h"
#include "proxy/routing/session_key.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

const CookieSigner& signer() {
  static const CookieSigner instance({"fuzz-secret-0123456789abcdef0123456789", "older-secret-0123456789abcdef012345678"});
  return instance;
}

void checkDecoded(std::string_view value) {
  RoutingCookie cookie;
  const CookieCheck check = signer().decode(value, &cookie);
  if (check == CookieCheck::kSigned) {
    FUZZ_CHECK(isValidProxyKey(cookie.key), cookie.key);
    // The first secret signs: a value signed by the older one encodes differently but must still
    // carry the same key and pin.
    RoutingCookie again;
    FUZZ_CHECK(signer().decode(signer().encode(cookie), &again) == CookieCheck::kSigned, std::string(value));
    FUZZ_CHECK(again.key == cookie.key && again.pin == cookie.pin, std::string(value));
  } else if (check == CookieCheck::kLegacy) {
    FUZZ_CHECK(cookie.key == value && !cookie.pin, std::string(value));
  }
}

// A well-formed cookie whose key, worker and time come from `bytes`: it must survive
// encode() and decode() unchanged.
void checkRoundTrip(std::string_view bytes) {
  if (bytes.size() < 16) return;
  RoutingCookie cookie;
  cookie.key = hexEncode(reinterpret_cast<const unsigned char*>(bytes.data()), 16);
  bytes.remove_prefix(16);
  if (!bytes.empty()) {
    std::string worker;
    for (char c : bytes.substr(0, 32)) {
      static constexpr std::string_view kChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
      worker.push_back(kChars[static_cast<unsigned char>(c) % kChars.size()]);
    }
    uint64_t since = 0;
    for (char c : bytes.substr(std::min<size_t>(bytes.size(), 32), 8)) since = (since << 8) | static_cast<unsigned char>(c);
    cookie.pin = CookiePin{worker, static_cast<int64_t>(since & INT64_MAX)};
  }
  const std::string value = signer().encode(cookie);
  RoutingCookie decoded;
  FUZZ_CHECK(signer().decode(value, &decoded) == CookieCheck::kSigned, value);
  FUZZ_CHECK(decoded.key == cookie.key && decoded.pin == cookie.pin, value);
  // Any one changed character is refused.
  for (size_t i = 0; i < value.size(); i += 7) {
    std::string tampered = value;
    tampered[i] = tampered[i] == 'a' ? 'b' : 'a';
    RoutingCookie ignored;
    FUZZ_CHECK(tampered == value || signer().decode(tampered, &ignored) != CookieCheck::kSigned, tampered);
  }
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  if (size < 1) return 0;
  const std::string_view name = (data[0] & 1) != 0 ? "SESSIONID" : "stickyproxy";
  const size_t cap = (data[0] & 0x80) != 0 ? 40 : kMaxCookieValueLength;
  const std::string header(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::optional<std::string_view> found = findCookie(header, name, cap);
  if (found) {
    FUZZ_CHECK(found->data() >= header.data() && found->data() + found->size() <= header.data() + header.size(),
               "the value does not point into the header");
    FUZZ_CHECK(!found->empty() && found->size() <= cap, std::string(*found));
    for (char c : *found) {
      const auto octet = static_cast<unsigned char>(c);
      FUZZ_CHECK(octet >= 0x21 && octet <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\', std::string(*found));
    }
    checkDecoded(*found);
  }
  checkDecoded(header);
  checkRoundTrip(header);
  return 0;
}
