// gzip (RFC 1952) compression of a response body as it streams, and the Accept-Encoding test
// that says whether a client takes it. Shared by the bundled app and the proxy.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace stickyproxy {

// True when a request whose Accept-Encoding field is `accept_encoding` takes a gzip body: gzip
// (or x-gzip) is listed with a q-value above 0, or, gzip not being listed, "*" is. "gzip;q=0"
// refuses it; no field (nullptr) or an empty one means identity only. Codings compare
// case-insensitively; a q-value that does not parse counts as 0 for that coding.
bool acceptsGzip(const std::string* accept_encoding);
bool acceptsGzip(std::string_view accept_encoding);

// One gzip stream, fed in pieces: feed() the body as it comes, take the output it appends, and
// finish() once. Memory is bounded whatever the body's size: zlib's state (about 270 KiB at
// the window and memory levels used here) and a 16 KiB output block; what the caller keeps of
// the output is the caller's. Not thread-safe; one stream per encoder.
class GzipEncoder {
 public:
  // `level` is zlib's 1 (fastest) to 9 (smallest); out-of-range values are clamped.
  explicit GzipEncoder(int level = kDefaultLevel);
  ~GzipEncoder();
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  // Compresses `input` and appends to `out` whatever compressed bytes are ready (possibly none:
  // deflate holds back until it has a block's worth). False only when zlib could not start or
  // failed (out of memory); the stream is unusable then. No feed() after finish().
  bool feed(std::string_view input, std::string* out);
  // Appends the rest of the stream and its trailer (CRC-32 and length) to `out`. Calling it
  // again appends nothing.
  bool finish(std::string* out);
  bool finished() const { return finished_; }

  // Input and output byte counts so far.
  uint64_t bytesIn() const { return bytes_in_; }
  uint64_t bytesOut() const { return bytes_out_; }

  // The whole of `input` as one gzip stream; empty when zlib failed.
  static std::string compress(std::string_view input, int level = kDefaultLevel);

  // Level 6 is zlib's own default: most of level 9's ratio at a third of its cost.
  static constexpr int kDefaultLevel = 6;

 private:
  bool run(std::string_view input, int flush, std::string* out);

  z_stream stream_{};
  bool ready_ = false;
  bool finished_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

// The reading side, for clients (the load generator, tests): `compressed` inflated as one whole
// gzip member into `out`; false when it is incomplete, corrupt or followed by other bytes.
bool gunzip(std::string_view compressed, std::string* out);

}  // namespace stickyproxy
