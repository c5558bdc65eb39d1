#include "proxy/net/slab_pool.h"

#include <utility>

namespace stickyproxy {

SlabPtr SlabPool::take() {
  for (size_t i = kept_.size(); i-- > 0;) {
    if (kept_[i].use_count() != 1) continue;
    SlabPtr slab = std::move(kept_[i]);
    kept_[i] = std::move(kept_.back());
    kept_.pop_back();
    return slab;
  }
  return Slab::make();
}

void SlabPool::giveBack(SlabPtr slab) {
  if (!slab || slab->capacity() != Slab::kDefaultSize) return;
  if (kept_.size() < kMaxKept) {
    kept_.push_back(std::move(slab));
    return;
  }
  // Full: make room by dropping a slab still viewed elsewhere (its views keep it alive).
  for (SlabPtr& kept : kept_) {
    if (kept.use_count() != 1 && slab.use_count() == 1) {
      kept = std::move(slab);
      return;
    }
  }
}

}  // namespace stickyproxy
