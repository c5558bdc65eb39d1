// Gzip in tests: reading bodies back with gunzip() (proxy/http/gzip_encoder.h, zlib's inflate, no
// part of the encoder) as an optional, and text to compress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "proxy/http/gzip_encoder.h"

namespace stickyproxy::testing {

// `gz` inflated as one whole gzip stream; nullopt when it is incomplete, corrupt or followed by
// other bytes.
inline std::optional<std::string> gunzip(const std::string& gz) {
  std::string out;
  if (!stickyproxy::gunzip(gz, &out)) return std::nullopt;
  return out;
}

// `bytes` of text a map page could hold, not one repeated byte: it compresses as a real page
// does. Seeded by `seed`, the same every run.
inline std::string pageLikeText(size_t bytes, uint32_t seed = 12345) {
  std::string text;
  while (text.size() < bytes) {
    seed = seed * 1664525u + 1013904223u;
    text += "<use href=\"#w" + std::to_string(seed % 4000) + "\" fill=\"#" + std::to_string(seed % 999983) + "\"/>\n";
  }
  text.resize(bytes);
  return text;
}

}  // namespace stickyproxy::testing
