#include "proxy/net/recycling_pool.h"

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

using namespace stickyproxy;

namespace {

// The size class of this test's blocks: one no other code on the test thread uses.
constexpr size_t kTestSize = RecyclingPool::kLargestBlock - 10;

struct Payload {
  char bytes[1000];
};

}  // namespace

TEST_CASE("a freed block is handed out again for any size of its class", "[net]") {
  if (!RecyclingPool::pooling()) return;  // AddressSanitizer: every block is malloc's
  void* first = RecyclingPool::allocate(100);
  RecyclingPool::deallocate(first, 100);
  void* second = RecyclingPool::allocate(120);  // 65..128 bytes: the same class
  CHECK(second == first);
  RecyclingPool::deallocate(second, 120);
  // Larger than the largest class: straight from malloc, never kept.
  size_t kept = RecyclingPool::keptBlocks();
  void* large = RecyclingPool::allocate(RecyclingPool::kLargestBlock + 1);
  RecyclingPool::deallocate(large, RecyclingPool::kLargestBlock + 1);
  CHECK(RecyclingPool::keptBlocks() == kept);
}

TEST_CASE("the pool keeps at most kMaxPerClass blocks of a class and kMaxKeptBytes in all", "[net]") {
  size_t kept_before = RecyclingPool::keptBlocks();
  std::vector<void*> blocks;
  for (size_t i = 0; i < RecyclingPool::kMaxPerClass + 50; ++i) blocks.push_back(RecyclingPool::allocate(kTestSize));
  for (void* block : blocks) RecyclingPool::deallocate(block, kTestSize);
  size_t kept = RecyclingPool::keptBlocks() - kept_before;
  CHECK(kept <= RecyclingPool::kMaxPerClass);
  CHECK(RecyclingPool::keptBytes() <= RecyclingPool::kMaxKeptBytes);
  if (RecyclingPool::pooling()) CHECK(kept > 0);
  // Taken again, the kept ones go first.
  blocks.clear();
  for (size_t i = 0; i < kept; ++i) blocks.push_back(RecyclingPool::allocate(kTestSize));
  CHECK(RecyclingPool::keptBlocks() == kept_before);
  for (void* block : blocks) RecyclingPool::deallocate(block, kTestSize);
}

TEST_CASE("an object made with allocate_shared leaves its block only when its weak references are gone too", "[net]") {
  RecyclingAllocator<Payload> allocator;
  auto first = std::allocate_shared<Payload>(allocator);
  const Payload* address = first.get();
  std::weak_ptr<Payload> watcher = first;
  first.reset();
  // The control block, and with it the object's block, lives on for the weak reference.
  auto second = std::allocate_shared<Payload>(allocator);
  CHECK(second.get() != address);
  CHECK(watcher.expired());
  watcher.reset();
  auto third = std::allocate_shared<Payload>(allocator);
  if (RecyclingPool::pooling()) CHECK(third.get() == address);
}
