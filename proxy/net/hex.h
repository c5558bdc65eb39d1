// Lowercase hexadecimal text: the one encoder the proxy, the backend and the tests share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stickyproxy {

// `size` bytes at `data` as 2*size lowercase hex chars.
std::string hexEncode(const void* data, size_t size);
inline std::string hexEncode(std::string_view bytes) { return hexEncode(bytes.data(), bytes.size()); }

// `value` as exactly `digits` lowercase hex chars (the low 4*digits bits, most significant first).
std::string hexOf(uint64_t value, size_t digits = 16);

// The value of 1 to 16 lowercase hex chars; nullopt for anything else (upper case included).
std::optional<uint64_t> parseHex(std::string_view text);

// True when `text` is non-empty and only lowercase hex chars.
bool isLowerHex(std::string_view text);

}  // namespace stickyproxy
