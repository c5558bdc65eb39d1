// [compression]: gzip for a worker's response when the client accepts it and the worker did not
// compress it. Decided from the request and the response head; the head is rewritten (no
// Content-Length, Content-Encoding: gzip, Vary: Accept-Encoding, a weak ETag) and the body is
// compressed as it streams through, a piece at a time, in bounded memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/config/config.h"
#include "proxy/http/gzip_encoder.h"
#include "proxy/http/http_message.h"
#include "proxy/net/bytes.h"

namespace stickyproxy {

class ResponseCompressor {
 public:
  // Why `response` to `request` goes uncompressed ("" when it is to be compressed): the
  // section is off, a HEAD request or a status without a whole body, a client that does not
  // take gzip, a body the worker encoded, Cache-Control: no-transform, a media type not
  // listed, an event stream, or a length under min_size.
  static std::string_view skipReason(const CompressionConfig& config, const RequestHead& request,
                                     const ResponseHead& response);
  // A compressor for `response`, whose head it rewrites, or null (and `response` untouched)
  // when skipReason() names a reason or config.max_streams compressors of this thread are at
  // work already.
  static std::unique_ptr<ResponseCompressor> start(const CompressionConfig& config, const RequestHead& request,
                                                   ResponseHead* response);

  explicit ResponseCompressor(int level) : encoder_(level) { ++active_; }
  ~ResponseCompressor() { --active_; }
  ResponseCompressor(const ResponseCompressor&) = delete;
  ResponseCompressor& operator=(const ResponseCompressor&) = delete;
  // Compressors alive on this thread.
  static size_t active() { return active_; }

  // Compresses a piece of the body; returns what is ready to send (often nothing yet).
  // Empty and failed() once zlib has failed: the caller then cuts the response.
  std::string feed(const Bytes& data);
  // The rest of the stream and its trailer.
  std::string finish();
  bool failed() const { return failed_; }
  uint64_t bytesIn() const { return encoder_.bytesIn(); }
  uint64_t bytesOut() const { return encoder_.bytesOut(); }

 private:
  static thread_local size_t active_;
  GzipEncoder encoder_;
  bool failed_ = false;
};

}  // namespace stickyproxy
