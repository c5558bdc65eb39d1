// The proxy's signed routing cookie: the session key and, once the session has moved, the worker
// it is pinned to, under an HMAC that only holders of the secret can make.
//
// Values: unpinned "K.M", pinned "K.W.T.M". K is the 32-lowercase-hex session key, W the worker
// name, T the pin's time in Unix seconds as lowercase hex, and M the first 16 bytes, as 32
// lowercase hex chars, of HMAC-SHA-256(secret, "stickyproxy-route-1\n" K "\n" W "\n" T), with W
// and T empty when unpinned. Every proxy instance holding the same secret reads a value alike,
// so a pin needs no shared store.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stickyproxy {

// Where a moved session lives, and since when (whole seconds of the wall clock).
struct CookiePin {
  std::string worker;
  int64_t since_s = 0;
  bool operator==(const CookiePin&) const = default;
};

// What a verified cookie says.
struct RoutingCookie {
  std::string key;               // 32 lowercase hex chars
  std::optional<CookiePin> pin;  // set for a moved session
};

// What a verified cookie says, as views into the value it was read from.
struct RoutingCookieView {
  std::string_view key;
  bool pinned = false;
  std::string_view pin_worker;  // set when pinned
  int64_t pin_since_s = 0;      // set when pinned
};

// How a cookie value was judged.
enum class CookieCheck {
  kSigned,    // a valid signed value
  kLegacy,    // a bare 32-hex key of the unsigned format (before signing); not authenticated
  kForged,    // the shape of a signed value, but the MAC does not match any secret
  kMalformed  // neither shape
};

// The secrets a proxy signs and verifies with. Immutable once loaded, but for decode()'s cache of
// verified values: one thread at a time.
class CookieSigner {
 public:
  // `secrets` must be non-empty; the first signs, every one verifies (so a secret can be
  // rotated by putting the new one first and dropping the old after cookie_max_age).
  explicit CookieSigner(std::vector<std::string> secrets);

  // The cookie value for `cookie`. `cookie.key` must be a valid session key and a pin's
  // worker a valid worker name.
  std::string encode(const RoutingCookie& cookie) const;

  // Parses and verifies `value`. Fills `*out` for kSigned (the key alone for kLegacy).
  // Never throws; the value is untrusted. Comparison of MACs is constant-time. A value verified
  // before is found in a cache instead of being hashed again (a session sends the same cookie
  // with each request).
  CookieCheck decode(std::string_view value, RoutingCookie* out) const;
  // The same, with no copy: `*out` views `value`.
  CookieCheck decode(std::string_view value, RoutingCookieView* out) const;

 private:
  // Signed values seen to be genuine, in sets of kWays chosen by a hash under a random seed (a
  // client cannot aim at a set); a hit needs the whole value, compared in constant time.
  struct VerifiedSlot {
    static constexpr size_t kCapacity = 120;  // the longest signed value is 115 chars
    uint8_t length = 0;                        // 0: empty
    char value[kCapacity];
  };
  static constexpr size_t kWays = 4;
  static constexpr size_t kSets = 256;

  std::string mac(const std::string& secret, std::string_view key, std::string_view worker,
                  std::string_view since_hex) const;
  // True when `value` was verified before; else, with `remember`, keeps it as verified.
  bool knownGenuine(std::string_view value) const;
  void rememberGenuine(std::string_view value) const;
  size_t setOf(std::string_view value) const;

  std::vector<std::string> secrets_;
  uint64_t cache_seed_ = 0;
  mutable std::vector<VerifiedSlot> verified_;  // kSets * kWays, made on first use
  mutable std::vector<uint8_t> next_victim_;    // per set: the way replaced next when it is full
};

// Reads the secrets from `path`: one per line, each at least 32 characters, blank lines and
// lines starting with '#' skipped. When the file is missing and `create` is true, writes a new
// one (32 random bytes as 64 hex chars, mode 0600) first. A file readable by group or others is
// refused, as ssh refuses a loose private key. Returns nullopt with `*error` on any failure.
std::optional<std::vector<std::string>> loadCookieSecrets(const std::string& path, bool create, std::string* error);

}  // namespace stickyproxy
