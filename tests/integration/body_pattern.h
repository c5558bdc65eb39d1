// What the integration tests and test-worker agree on about generated bodies: the byte pattern
// of uploads and downloads, and the checksum /count reports. Shared so both sides compute the
// same values without holding large bodies.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace stickyproxy::integration {

// The pattern repeats every 64 bytes, so any 64-byte-aligned piece of it is the same text.
inline constexpr std::string_view kPatternAlphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
static_assert(kPatternAlphabet.size() == 64);

inline char patternByte(uint64_t offset) { return kPatternAlphabet[offset % kPatternAlphabet.size()]; }

// `length` bytes of the pattern starting at absolute offset `offset`.
inline std::string patternText(uint64_t offset, size_t length) {
  std::string text(length, '\0');
  for (size_t i = 0; i < length; ++i) text[i] = patternByte(offset + i);
  return text;
}

// 64-bit FNV-1a, fed piece by piece: a body's checksum without keeping the body.
class Fnv1a64 {
 public:
  void update(std::string_view data) {
    for (unsigned char c : data) {
      hash_ ^= c;
      hash_ *= 1099511628211ULL;
    }
  }
  uint64_t value() const { return hash_; }
  // 16 lowercase hex digits.
  std::string hex() const {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash_));
    return text;
  }

 private:
  uint64_t hash_ = 14695981039346656037ULL;
};

// The checksum of `length` pattern bytes from offset 0.
inline std::string patternFnvHex(uint64_t length) {
  Fnv1a64 hash;
  std::string block = patternText(0, 64 * 1024);
  uint64_t left = length;
  while (left > 0) {
    size_t piece = left < block.size() ? static_cast<size_t>(left) : block.size();
    hash.update(std::string_view(block).substr(0, piece));
    left -= piece;
  }
  return hash.hex();
}

}  // namespace stickyproxy::integration
