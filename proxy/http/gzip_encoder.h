// gzip (RFC 1952) compression of a response body as it streams, and the Accept-Encoding test
// that says whether a client takes it. Shared by the bundled app and the proxy.
#pragma once

#include <zlib.h>

#include <chrono>
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
// the window and memory levels used here; none at level 0) and a 16 KiB output block; what
// the caller keeps of the output is the caller's. Not thread-safe; one stream per encoder.
//
// Levels 1 to 9 are zlib's. zlib's state is kept per thread between encoders (deflateReset,
// not deflateEnd): making one allocates and touches about 270 KiB, which cost three times the
// deflating of a 64 KiB page. A thread keeps at most kMaxKeptStreams idle states, each reset
// before it is kept, and frees those unused for kKeptIdle at its next encoder.
//
// Level 0 (kFastLevel) is one pass with deflate's fixed codes, as HAProxy's libslz does: a
// hash table that remembers one earlier position per four bytes, matches only within the piece
// being fed, no block held back. About four times faster than zlib's level 1, its output about
// 30% larger on markup; a stream holds a few bytes of state (its thread, one 64 KiB table for
// all of its streams).
class GzipEncoder {
 public:
  // `level` is zlib's 1 (fastest) to 9 (smallest), or kFastLevel; out-of-range values are
  // clamped.
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

  // What feed() and finish() are made of, for callers that bring their own output buffers:
  // deflates from `*input` (advanced past what was taken) into at most `capacity` bytes at
  // `out`, ending the stream when `finish` is set. `capacity` is at least kMinStepRoom, and the
  // more it is the better level 0 compresses (it matches only within one step's input). Call
  // again, with new room, while `more` says output is still waiting or input is left. `ok` is
  // false when zlib could not start or failed, as for feed(). After the step that ends the
  // stream, finished() is true.
  struct Step {
    size_t written = 0;
    bool more = false;
    bool ok = true;
  };
  Step deflateInto(std::string_view* input, bool finish, char* out, size_t capacity);

  // Input and output byte counts so far.
  uint64_t bytesIn() const { return bytes_in_; }
  uint64_t bytesOut() const { return bytes_out_; }

  // The whole of `input` as one gzip stream; empty when zlib failed.
  static std::string compress(std::string_view input, int level = kDefaultLevel);

  // The calling thread's idle zlib states, and how many it has made (deflateInit2) so far.
  static size_t keptStreams();
  static uint64_t streamsMade();
  // Frees the calling thread's idle states unused since `now - kKeptIdle`; returns how many.
  // Encoders do this themselves as they start; a test passes a later `now`.
  static size_t freeIdleStreams(std::chrono::steady_clock::time_point now);

  // Level 6 is zlib's own default: most of level 9's ratio at a third of its cost.
  static constexpr int kDefaultLevel = 6;
  static constexpr int kFastLevel = 0;
  // Room for a step's header, trailer and pending bits, with some input besides.
  static constexpr size_t kMinStepRoom = 64;
  // About 4.3 MiB per thread at most: enough for the responses a loop compresses at once.
  static constexpr size_t kMaxKeptStreams = 16;
  static constexpr std::chrono::seconds kKeptIdle{30};

 private:
  Step deflateFixedInto(std::string_view* input, bool finish, char* out, size_t capacity);
  // Steps through `input` (and the end, with `finish`), appending to `out` with `block` bytes
  // of room a step.
  bool append(std::string_view input, bool finish, size_t block, std::string* out);

  // Levels 1 to 9: not moved once made, as zlib's state points back at it.
  z_stream* stream_ = nullptr;
  int level_;
  // Level 0: whether the header is out, the bits short of a whole word, the CRC-32 so far.
  bool started_ = false;
  uint64_t pending_bits_ = 0;
  int pending_count_ = 0;
  uint32_t crc_ = 0;
  bool ready_ = false;
  bool finished_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

// The reading side, for clients (the load generator, tests): `compressed` inflated as one whole
// gzip member into `out`; false when it is incomplete, corrupt or followed by other bytes.
bool gunzip(std::string_view compressed, std::string* out);

}  // namespace stickyproxy
