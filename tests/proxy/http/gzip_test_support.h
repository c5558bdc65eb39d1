// Reading gzip bodies back in tests: gunzip() (proxy/http/gzip_encoder.h, zlib's inflate, no
// part of the encoder) as an optional.
#pragma once

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

}  // namespace stickyproxy::testing
