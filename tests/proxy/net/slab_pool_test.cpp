#include "proxy/net/slab_pool.h"

#include <catch2/catch.hpp>
#include <vector>

using namespace stickyproxy;

TEST_CASE("a slab comes back out of the pool only once nothing views it", "[net]") {
  SlabPool pool;
  SlabPtr first = pool.take();
  Slab* address = first.get();
  Bytes view(first, first->data(), 10);  // a queued write, say
  pool.giveBack(std::move(first));
  SlabPtr second = pool.take();
  CHECK(second.get() != address);  // still viewed: a new one
  view = Bytes();
  SlabPtr third = pool.take();
  CHECK(third.get() == address);  // the view is gone: reused
  CHECK(third.use_count() == 1);
  CHECK(pool.keptCount() == 0);
}

TEST_CASE("the pool keeps at most kMaxKept slabs, preferring free ones", "[net]") {
  SlabPool pool;
  std::vector<Bytes> views;
  for (size_t i = 0; i < SlabPool::kMaxKept; ++i) {
    SlabPtr slab = pool.take();
    views.emplace_back(slab, slab->data(), 1);
    pool.giveBack(std::move(slab));
  }
  CHECK(pool.keptCount() == SlabPool::kMaxKept);
  // Full of viewed slabs: a free one replaces one of them rather than being dropped.
  SlabPtr free_slab = Slab::make();
  Slab* address = free_slab.get();
  pool.giveBack(std::move(free_slab));
  CHECK(pool.keptCount() == SlabPool::kMaxKept);
  CHECK(pool.take().get() == address);
  // Slabs of another size (a copy of some text) are never kept.
  pool.giveBack(Slab::copyOf("text"));
  CHECK(pool.keptCount() == SlabPool::kMaxKept - 1);
}
