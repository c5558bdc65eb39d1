#include "proxy/routing/routing_cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "proxy/net/file_util.h"
#include "proxy/net/hex.h"
#include "proxy/routing/session_key.h"

namespace stickyproxy {

namespace {

constexpr std::string_view kMacContext = "stickyproxy-route-1\n";
constexpr size_t kMacHexLength = 32;
constexpr size_t kMinSecretLength = 32;
constexpr size_t kMaxWorkerName = 32;
constexpr size_t kMaxSinceDigits = 16;

bool isWorkerNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool isWorkerName(std::string_view name) {
  if (name.empty() || name.size() > kMaxWorkerName) return false;
  for (char c : name) {
    if (!isWorkerNameChar(c)) return false;
  }
  return true;
}

// Splits `value` at '.' into at most `max` parts; returns how many there were (max + 1 when
// there were more).
size_t splitDots(std::string_view value, std::string_view* parts, size_t max) {
  size_t count = 0;
  while (true) {
    size_t dot = value.find('.');
    if (count == max) return max + 1;
    parts[count++] = value.substr(0, dot);
    if (dot == std::string_view::npos) return count;
    value.remove_prefix(dot + 1);
  }
}

}  // namespace

CookieSigner::CookieSigner(std::vector<std::string> secrets) : secrets_(std::move(secrets)) {
  // Without randomness the seed stays 0: slots become predictable, hits still need genuine values.
  RAND_bytes(reinterpret_cast<unsigned char*>(&cache_seed_), sizeof cache_seed_);
}

size_t CookieSigner::setOf(std::string_view value) const {
  if (verified_.empty()) {
    verified_.resize(kSets * kWays);
    next_victim_.resize(kSets);
  }
  return XXH64(value.data(), value.size(), cache_seed_) % kSets;
}

bool CookieSigner::knownGenuine(std::string_view value) const {
  const VerifiedSlot* ways = &verified_[setOf(value) * kWays];
  bool found = false;
  for (size_t way = 0; way < kWays; ++way) {
    found |= ways[way].length == value.size() && CRYPTO_memcmp(ways[way].value, value.data(), value.size()) == 0;
  }
  return found;
}

void CookieSigner::rememberGenuine(std::string_view value) const {
  if (value.empty() || value.size() > VerifiedSlot::kCapacity) return;
  size_t set = setOf(value);
  VerifiedSlot* ways = &verified_[set * kWays];
  size_t way = 0;
  while (way < kWays && ways[way].length != 0) ++way;
  if (way == kWays) way = next_victim_[set]++ % kWays;
  std::memcpy(ways[way].value, value.data(), value.size());
  ways[way].length = static_cast<uint8_t>(value.size());
}

std::string CookieSigner::mac(const std::string& secret, std::string_view key, std::string_view worker,
                              std::string_view since_hex) const {
  std::string message;
  message.reserve(kMacContext.size() + key.size() + worker.size() + since_hex.size() + 2);
  message.append(kMacContext).append(key).append("\n").append(worker).append("\n").append(since_hex);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(), &length);
  return hexEncode(digest.data(), kMacHexLength / 2);
}

std::string CookieSigner::encode(const RoutingCookie& cookie) const {
  std::string worker = cookie.pin ? cookie.pin->worker : std::string();
  std::string since;
  if (cookie.pin) {
    // The shortest form: no leading zeros, so that every instance writes the same bytes.
    uint64_t value = static_cast<uint64_t>(cookie.pin->since_s);
    size_t digits = 1;
    while (digits < kMaxSinceDigits && (value >> (4 * digits)) != 0) ++digits;
    since = hexOf(value, digits);
  }
  std::string out = cookie.key;
  if (cookie.pin) out.append(".").append(worker).append(".").append(since);
  out.append(".").append(mac(secrets_.front(), cookie.key, worker, since));
  return out;
}

CookieCheck CookieSigner::decode(std::string_view value, RoutingCookie* out) const {
  RoutingCookieView view;
  CookieCheck check = decode(value, &view);
  if (check != CookieCheck::kSigned && check != CookieCheck::kLegacy) return check;
  out->key = std::string(view.key);
  if (view.pinned) {
    out->pin = CookiePin{std::string(view.pin_worker), view.pin_since_s};
  } else {
    out->pin.reset();
  }
  return check;
}

CookieCheck CookieSigner::decode(std::string_view value, RoutingCookieView* out) const {
  std::array<std::string_view, 4> parts;
  size_t count = splitDots(value, parts.data(), parts.size());
  if (count == 1) {
    if (!isValidProxyKey(value)) return CookieCheck::kMalformed;
    *out = RoutingCookieView{value, false, {}, 0};
    return CookieCheck::kLegacy;
  }
  if (count != 2 && count != 4) return CookieCheck::kMalformed;
  std::string_view key = parts[0];
  std::string_view mac_text = parts[count - 1];
  std::string_view worker = count == 4 ? parts[1] : std::string_view();
  std::string_view since = count == 4 ? parts[2] : std::string_view();
  if (!isValidProxyKey(key) || mac_text.size() != kMacHexLength || !isLowerHex(mac_text)) return CookieCheck::kMalformed;
  std::optional<uint64_t> since_value;
  if (count == 4) {
    since_value = parseHex(since);
    if (!isWorkerName(worker) || !since_value || *since_value > static_cast<uint64_t>(INT64_MAX) ||
        (since.size() > 1 && since.front() == '0')) {
      return CookieCheck::kMalformed;
    }
  }
  if (!knownGenuine(value)) {
    bool valid = false;
    for (const std::string& secret : secrets_) {
      std::string expected = mac(secret, key, worker, since);
      // Constant time, and every secret is tried, so timing tells nothing about which matched.
      valid |= CRYPTO_memcmp(expected.data(), mac_text.data(), kMacHexLength) == 0;
    }
    if (!valid) return CookieCheck::kForged;
    rememberGenuine(value);
  }
  *out = RoutingCookieView{key, count == 4, worker, count == 4 ? static_cast<int64_t>(*since_value) : 0};
  return CookieCheck::kSigned;
}

std::optional<std::vector<std::string>> loadCookieSecrets(const std::string& path, bool create, std::string* error) {
  std::string text;
  if (!readWholeFile(path, &text)) {
    if (errno != ENOENT || !create) {
      *error = path + ": " + errnoText(errno);
      return std::nullopt;
    }
    std::array<unsigned char, 32> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
      *error = "cannot make a routing secret: RAND_bytes failed";
      return std::nullopt;
    }
    text = hexEncode(bytes.data(), bytes.size()) + "\n";
    if (!writeFileAtomically(path, text, error, 0600)) return std::nullopt;
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    *error = path + ": " + errnoText(errno);
    return std::nullopt;
  }
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(info.st_mode & 0777));
    *error = path + ": group or others may read it (mode " + mode + "); chmod 600 it";
    return std::nullopt;
  }
  std::vector<std::string> secrets;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    if (line.size() < kMinSecretLength) {
      *error = path + ":" + std::to_string(line_number) + ": a secret must be at least " +
               std::to_string(kMinSecretLength) + " characters";
      return std::nullopt;
    }
    secrets.push_back(std::move(line));
  }
  if (secrets.empty()) {
    *error = path + ": holds no secret";
    return std::nullopt;
  }
  return secrets;
}

}  // namespace stickyproxy
