// A request body kept so that the request can be sent again to another worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "proxy/net/bytes.h"

namespace stickyproxy {

// The memory all of one loop's replay buffers may hold together ([limits] retry_buffer_total),
// counted by the slabs they take, so that many uploads at once cannot take the proxy's memory with
// them. Loop thread only.
class ReplayBudget {
 public:
  explicit ReplayBudget(uint64_t limit) : limit_(limit) {}
  // A lower limit on reload applies to the next take(); what is held stays held.
  void setLimit(uint64_t limit) { limit_ = limit; }
  // Counts `bytes` as held -> true; false (nothing counted) when that would pass the limit.
  bool take(uint64_t bytes);
  void give(uint64_t bytes) { held_ -= bytes; }
  uint64_t held() const { return held_; }
  // The most held at once since the last call (or since construction); starts over from held().
  uint64_t takePeak();

 private:
  uint64_t limit_;
  uint64_t held_ = 0;
  uint64_t peak_ = 0;
};

// Copies the pieces it is given into compact slabs (a body that arrives a byte per read must not
// pin a read buffer per byte), up to `limit` bytes in all. Past the limit it lets go of
// everything and stays overflowed: the body can no longer be replayed. The same happens when
// `budget` (if any) has no room for another slab. The budget must outlive every buffer that
// still holds slabs of it (one released or dropped holds none).
class ReplayBuffer {
 public:
  // Why a body is no longer kept.
  enum class Dropped { kNo, kRequestLimit, kBudget, kReleased };

  explicit ReplayBuffer(uint64_t limit, ReplayBudget* budget = nullptr) : limit_(limit), budget_(budget) {}
  ~ReplayBuffer() { letGo(); }
  ReplayBuffer(const ReplayBuffer&) = delete;
  ReplayBuffer& operator=(const ReplayBuffer&) = delete;

  // Keeps a copy of `data`. Returns false once the body is (or has been) over a limit.
  bool append(const Bytes& data);
  // Lets go of the body: nothing more is kept (a response has begun; it will not be replayed).
  void release();

  // False after an overflow or release().
  bool replayable() const { return dropped_ == Dropped::kNo; }
  Dropped dropped() const { return dropped_; }
  // The body so far, in order.
  const std::vector<Bytes>& pieces() const { return pieces_; }
  uint64_t size() const { return size_; }

 private:
  static constexpr size_t kSlabSize = 64 * 1024;
  static constexpr size_t kFirstSlabSize = 4 * 1024;

  void drop(Dropped why);
  // Frees the copy and gives its bytes back to the budget.
  void letGo();

  uint64_t limit_;
  ReplayBudget* budget_;
  uint64_t size_ = 0;
  uint64_t charged_ = 0;  // slab bytes taken from budget_
  Dropped dropped_ = Dropped::kNo;
  SlabPtr slab_;        // the slab being filled
  size_t slab_used_ = 0;
  std::vector<Bytes> pieces_;
};

}  // namespace stickyproxy
