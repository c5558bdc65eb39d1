#include "proxy/net/recycling_pool.h"

#include <cstdlib>

namespace stickyproxy {

namespace {

// Under AddressSanitizer every block goes to malloc and free, so that a use after free is still
// caught rather than hidden by a block handed out again.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPooling = false;
#else
constexpr bool kPooling = true;
#endif
#else
constexpr bool kPooling = true;
#endif

constexpr size_t kClasses = RecyclingPool::kLargestBlock / RecyclingPool::kGranule;

// A free block holds the link to the next one of its class.
struct FreeBlock {
  FreeBlock* next;
};

class ThreadLists {
 public:
  ~ThreadLists();
  void* take(size_t size_class) {
    FreeBlock* block = heads_[size_class];
    if (block == nullptr) return nullptr;
    heads_[size_class] = block->next;
    --counts_[size_class];
    kept_bytes_ -= blockBytes(size_class);
    return block;
  }
  bool keep(void* memory, size_t size_class) {
    size_t bytes = blockBytes(size_class);
    if (counts_[size_class] >= RecyclingPool::kMaxPerClass || kept_bytes_ + bytes > RecyclingPool::kMaxKeptBytes) {
      return false;
    }
    auto* block = static_cast<FreeBlock*>(memory);
    block->next = heads_[size_class];
    heads_[size_class] = block;
    ++counts_[size_class];
    kept_bytes_ += bytes;
    return true;
  }
  size_t keptBlocks() const {
    size_t total = 0;
    for (size_t count : counts_) total += count;
    return total;
  }
  size_t keptBytes() const { return kept_bytes_; }
  static size_t blockBytes(size_t size_class) { return (size_class + 1) * RecyclingPool::kGranule; }

 private:
  FreeBlock* heads_[kClasses] = {};
  size_t counts_[kClasses] = {};
  size_t kept_bytes_ = 0;
};

// Trivially destructible, so still readable while the thread's other objects are destroyed.
thread_local bool tl_lists_gone = false;
thread_local ThreadLists tl_lists;

ThreadLists::~ThreadLists() {
  tl_lists_gone = true;
  for (size_t size_class = 0; size_class < kClasses; ++size_class) {
    while (void* block = take(size_class)) std::free(block);
  }
}

// The class of a block of `size` bytes, or kClasses when it is not pooled.
size_t classOf(size_t size) {
  if (!kPooling || size == 0 || size > RecyclingPool::kLargestBlock) return kClasses;
  return (size - 1) / RecyclingPool::kGranule;
}

}  // namespace

void* RecyclingPool::allocate(size_t size) {
  size_t size_class = classOf(size);
  if (size_class == kClasses) {
    void* memory = std::malloc(size == 0 ? 1 : size);
    if (memory == nullptr) throw std::bad_alloc();
    return memory;
  }
  if (!tl_lists_gone) {
    if (void* block = tl_lists.take(size_class)) return block;
  }
  // Every block of a class has the class's full size, so any of them serves any request of it.
  void* memory = std::malloc(ThreadLists::blockBytes(size_class));
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

void RecyclingPool::deallocate(void* block, size_t size) {
  if (block == nullptr) return;
  size_t size_class = classOf(size);
  if (size_class != kClasses && !tl_lists_gone && tl_lists.keep(block, size_class)) return;
  std::free(block);
}

bool RecyclingPool::pooling() { return kPooling; }

size_t RecyclingPool::keptBlocks() { return tl_lists_gone ? 0 : tl_lists.keptBlocks(); }

size_t RecyclingPool::keptBytes() { return tl_lists_gone ? 0 : tl_lists.keptBytes(); }

}  // namespace stickyproxy
