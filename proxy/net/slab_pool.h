// The read slabs of one loop, lent to a stream for each read and reused once nothing views them:
// an idle connection holds no buffer, and a busy loop allocates none in steady state.
#pragma once

#include <vector>

#include "proxy/net/bytes.h"

namespace stickyproxy {

// Loop thread only (use counts are read without synchronisation).
class SlabPool {
 public:
  // Slabs kept for reuse at most, viewed or not: 4 MiB of 64 KiB slabs.
  static constexpr size_t kMaxKept = 64;

  SlabPool() { kept_.reserve(kMaxKept); }
  // A slab of Slab::kDefaultSize that nothing else views: a kept one, else a new one.
  SlabPtr take();
  // Takes back a slab its stream no longer reads into; views of it may still live (queued
  // writes, pipelined input): it is handed out again only once they are gone.
  void giveBack(SlabPtr slab);
  size_t keptCount() const { return kept_.size(); }

 private:
  std::vector<SlabPtr> kept_;
};

}  // namespace stickyproxy
