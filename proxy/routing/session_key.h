// The proxy's routing key: how it is made, carried in a cookie, and shown in logs.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace stickyproxy {

// Length of a key made by newSessionKey(): 16 random bytes as lowercase hex.
inline constexpr size_t kSessionKeyLength = 32;

// Default upper bound for a cookie value accepted by findCookie().
inline constexpr size_t kMaxCookieValueLength = 256;

// A fresh routing key: 16 bytes from OpenSSL RAND_bytes as 32 lowercase hex chars.
// Returns an empty string if RAND_bytes fails; the caller then answers 500.
std::string newSessionKey();

// True for exactly 32 lowercase hex chars, the shape newSessionKey() produces.
// Anything else in the proxy's cookie is ignored and replaced by a fresh key.
bool isValidProxyKey(std::string_view value);

// The value of cookie `name` in one Cookie header value such as "a=1; b=2" (RFC 6265
// sections 4.2 and 5.4), tolerant of missing or extra spaces and tabs around pairs.
// Names match exactly and case-sensitively. A value in double quotes is returned without them.
// When `name` occurs more than once, the first occurrence decides (browsers send the most
// specific cookie first). Returns nullopt when the cookie is absent, or its first value is
// empty, longer than `max_len`, or holds a byte outside RFC 6265 cookie-octet.
// The result points into `cookie_header`. Never throws: the header is untrusted.
std::optional<std::string_view> findCookie(std::string_view cookie_header, std::string_view name,
                                           size_t max_len = kMaxCookieValueLength);

// A Set-Cookie header value: "name=value; Path=/; Max-Age=N; HttpOnly; SameSite=Lax", followed
// by "; Secure" when `secure`. A negative `max_age` is written as 0. `name` and `value` must
// already be valid cookie tokens (the caller passes configured names and generated keys).
std::string buildSetCookie(std::string_view name, std::string_view value,
                           std::chrono::seconds max_age, bool secure);

// The first 8 hex chars of stableHash(key): what logs print to correlate a session's requests.
// Never the key itself, which would let a log reader take over the session's pinning.
std::string shortKeyHash(std::string_view key);
// shortKeyHash() of a key whose stableHash() is `key_hash`.
std::string shortKeyHashOf(uint64_t key_hash);

}  // namespace stickyproxy
