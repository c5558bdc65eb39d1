#include "proxy/net/hex.h"

namespace stickyproxy {

namespace {
constexpr char kDigits[] = "0123456789abcdef";

int digitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string hexEncode(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

std::string hexOf(uint64_t value, size_t digits) {
  std::string out(digits, '0');
  for (size_t i = 0; i < digits; ++i) {
    out[digits - 1 - i] = kDigits[value & 0x0f];
    value >>= 4;
  }
  return out;
}

std::optional<uint64_t> parseHex(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    int digit = digitValue(c);
    if (digit < 0) return std::nullopt;
    value = (value << 4) | static_cast<uint64_t>(digit);
  }
  return value;
}

bool isLowerHex(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (digitValue(c) < 0) return false;
  }
  return true;
}

}  // namespace stickyproxy
