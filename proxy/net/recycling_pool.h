// Per-thread free lists of memory blocks for the objects a request makes and drops (its server
// exchange, its proxy request): taken from the list when one of the right size waits there,
// else from malloc, and given back to it when freed, so a steady stream of requests allocates
// nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace stickyproxy {

// Blocks are grouped in size classes of kGranule bytes up to kLargestBlock; a larger block
// always comes from malloc. Each class keeps at most kMaxPerClass free blocks and the thread
// at most kMaxKeptBytes in all: beyond either a freed block goes back to malloc. Memory may be
// freed on another thread than the one that took it (it then joins that thread's lists).
// After the thread's lists are destroyed (thread exit) every call goes to malloc and free.
class RecyclingPool {
 public:
  static constexpr size_t kGranule = 64;
  static constexpr size_t kLargestBlock = 4096;
  static constexpr size_t kMaxPerClass = 256;
  static constexpr size_t kMaxKeptBytes = size_t{2} << 20;

  // A block of at least `size` bytes, aligned for any fundamental type. Throws std::bad_alloc
  // as operator new does.
  static void* allocate(size_t size);
  // Gives back a block allocate(`size`) returned.
  static void deallocate(void* block, size_t size);
  // False in builds under AddressSanitizer, where every block goes to malloc and free so that a
  // use after free is still caught.
  static bool pooling();
  // Free blocks the calling thread keeps, and their bytes (for tests).
  static size_t keptBlocks();
  static size_t keptBytes();
};

// A stateless allocator over RecyclingPool, for std::allocate_shared and containers.
template <typename T>
struct RecyclingAllocator {
  using value_type = T;
  RecyclingAllocator() = default;
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>& /*other*/) {}  // NOLINT: rebinding is implicit
  T* allocate(size_t count) {
    static_assert(alignof(T) <= alignof(std::max_align_t), "over-aligned types are not pooled");
    return static_cast<T*>(RecyclingPool::allocate(count * sizeof(T)));
  }
  void deallocate(T* block, size_t count) { RecyclingPool::deallocate(block, count * sizeof(T)); }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>& /*other*/) const {
    return true;
  }
};

}  // namespace stickyproxy
