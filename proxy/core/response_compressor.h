// [compression]: gzip for a worker's response when the client accepts it and the worker did not
// compress it. Decided from the request and the response head; the head is rewritten (no
// Content-Length, Content-Encoding: gzip, Vary: Accept-Encoding, a weak ETag) and the body is
// compressed as it streams through, a piece at a time, in bounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/config/config.h"
#include "proxy/http/gzip_encoder.h"
#include "proxy/http/http_message.h"
#include "proxy/net/bytes.h"
#include "proxy/net/recycling_pool.h"
#include "proxy/net/slab_pool.h"

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
  // work already. Its output goes out in slabs of `slabs` (the loop's), which must outlive it.
  static std::unique_ptr<ResponseCompressor> start(const CompressionConfig& config, const RequestHead& request,
                                                   ResponseHead* response, SlabPool* slabs);

  ResponseCompressor(int level, SlabPool* slabs) : encoder_(level), slabs_(slabs) { ++active_; }
  ~ResponseCompressor();
  ResponseCompressor(const ResponseCompressor&) = delete;
  ResponseCompressor& operator=(const ResponseCompressor&) = delete;
  // Recycled per thread, as the exchanges are: a gzipped response allocates none of its own.
  static void* operator new(size_t size) { return RecyclingPool::allocate(size); }
  static void operator delete(void* block, size_t size) { RecyclingPool::deallocate(block, size); }
  // Compressors alive on this thread.
  static size_t active() { return active_; }

  // Takes each run of compressed bytes as it is ready, a view into a slab (the caller may keep
  // it; the compressor writes only past it, or into another slab, while the view lives).
  using Send = std::function<void(Bytes)>;
  // Compresses a piece of the body and passes what is ready to `send` (often nothing yet:
  // deflate holds back until it has a block). False, and failed(), once zlib has failed: the
  // caller then cuts the response.
  bool feed(const Bytes& data, const Send& send);
  // The rest of the stream and its trailer, to `send`.
  bool finish(const Send& send);
  bool failed() const { return failed_; }
  uint64_t bytesIn() const { return encoder_.bytesIn(); }
  uint64_t bytesOut() const { return encoder_.bytesOut(); }

 private:
  bool run(std::string_view input, bool finish, const Send& send);
  // Makes room in out_ for the next output, `wanted` bytes if it can: from its start when
  // nothing views it any more, else past what was sent, else in a new slab.
  void makeRoom(size_t wanted);

  static thread_local size_t active_;
  GzipEncoder encoder_;
  SlabPool* slabs_;
  SlabPtr out_;
  size_t used_ = 0;  // out_'s bytes already sent
  bool failed_ = false;
};

}  // namespace stickyproxy
