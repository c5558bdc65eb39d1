#include "proxy/routing/session_key.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>

#include "proxy/http/http_message.h"
#include "proxy/net/hex.h"
#include "proxy/routing/stable_hash.h"

namespace stickyproxy {

namespace {

constexpr size_t kSessionKeyBytes = kSessionKeyLength / 2;

// RFC 6265 section 4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E,
// i.e. visible US-ASCII except DQUOTE, comma, semicolon and backslash.
bool isCookieOctet(unsigned char c) {
  return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

// Checks one cookie value as found in the header and strips its optional quotes.
std::optional<std::string_view> acceptValue(std::string_view value, size_t max_len) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.empty() || value.size() > max_len) return std::nullopt;
  for (char c : value) {
    if (!isCookieOctet(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return value;
}

}  // namespace

std::string newSessionKey() {
  std::array<unsigned char, kSessionKeyBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return {};
  return hexEncode(bytes.data(), bytes.size());
}

bool isValidProxyKey(std::string_view value) {
  return value.size() == kSessionKeyLength && isLowerHex(value);
}

std::optional<std::string_view> findCookie(std::string_view cookie_header, std::string_view name,
                                           size_t max_len) {
  if (name.empty()) return std::nullopt;
  // Splitting on ';' alone is enough: no valid name or value contains one, and a quoted value
  // with a ';' inside is broken apart and then rejected for its unbalanced quote.
  while (!cookie_header.empty()) {
    const size_t semicolon = cookie_header.find(';');
    std::string_view pair = cookie_header.substr(0, semicolon);
    cookie_header = semicolon == std::string_view::npos ? std::string_view()
                                                        : cookie_header.substr(semicolon + 1);
    const size_t equals = pair.find('=');
    if (equals == std::string_view::npos) continue;  // Not a name=value pair: skip it.
    if (trimOws(pair.substr(0, equals)) != name) continue;
    return acceptValue(trimOws(pair.substr(equals + 1)), max_len);
  }
  return std::nullopt;
}

std::string buildSetCookie(std::string_view name, std::string_view value,
                           std::chrono::seconds max_age, bool secure) {
  const long long seconds = max_age.count() < 0 ? 0 : static_cast<long long>(max_age.count());
  std::string header;
  header.reserve(name.size() + value.size() + 64);
  header.append(name);
  header.push_back('=');
  header.append(value);
  header.append("; Path=/; Max-Age=");
  header.append(std::to_string(seconds));
  header.append("; HttpOnly; SameSite=Lax");
  if (secure) header.append("; Secure");
  return header;
}

std::string shortKeyHash(std::string_view key) { return shortKeyHashOf(stableHash(key)); }

std::string shortKeyHashOf(uint64_t key_hash) {
  // The top 32 bits, so the 8 chars are the prefix of the 16-char form used elsewhere.
  return hexOf(key_hash >> 32, 8);
}

}  // namespace stickyproxy
