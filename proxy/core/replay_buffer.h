// A request body kept so that the request can be sent again to another worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "proxy/net/bytes.h"

namespace stickyproxy {

// Copies the pieces it is given into compact slabs (a body that arrives a byte per read must not
// pin a read buffer per byte), up to `limit` bytes in all. Past the limit it lets go of
// everything and stays overflowed: the body can no longer be replayed.
class ReplayBuffer {
 public:
  explicit ReplayBuffer(uint64_t limit) : limit_(limit) {}

  // Keeps a copy of `data`. Returns false once the body is (or has been) over the limit.
  bool append(const Bytes& data);
  // Lets go of the body: nothing more is kept (a response has begun; it will not be replayed).
  void release();

  // False after an overflow or release().
  bool replayable() const { return !overflowed_; }
  // The body so far, in order.
  const std::vector<Bytes>& pieces() const { return pieces_; }
  uint64_t size() const { return size_; }

 private:
  static constexpr size_t kSlabSize = 64 * 1024;

  uint64_t limit_;
  uint64_t size_ = 0;
  bool overflowed_ = false;
  SlabPtr slab_;        // the slab being filled
  size_t slab_used_ = 0;
  std::vector<Bytes> pieces_;
};

}  // namespace stickyproxy
