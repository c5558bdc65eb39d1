// Reading gzip bodies back in tests, with zlib's own inflate: nothing of the encoder under test.
#pragma once

#include <zlib.h>

#include <optional>
#include <string>

namespace stickyproxy::testing {

// `gz` inflated as one whole gzip stream; nullopt when zlib finds it incomplete, corrupt or
// followed by other bytes.
inline std::optional<std::string> gunzip(const std::string& gz) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return std::nullopt;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  stream.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  int result = Z_OK;
  while (result == Z_OK) {
    char block[4096];
    stream.next_out = reinterpret_cast<Bytef*>(block);
    stream.avail_out = sizeof block;
    result = inflate(&stream, Z_NO_FLUSH);
    out.append(block, sizeof block - stream.avail_out);
  }
  const bool whole = result == Z_STREAM_END && stream.avail_in == 0;
  inflateEnd(&stream);
  if (!whole) return std::nullopt;
  return out;
}

}  // namespace stickyproxy::testing
