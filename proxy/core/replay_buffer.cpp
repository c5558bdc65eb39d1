#include "proxy/core/replay_buffer.h"

#include <algorithm>
#include <cstring>

namespace stickyproxy {

bool ReplayBudget::take(uint64_t bytes) {
  if (held_ + bytes > limit_) return false;
  held_ += bytes;
  peak_ = std::max(peak_, held_);
  return true;
}

uint64_t ReplayBudget::takePeak() {
  uint64_t peak = peak_;
  peak_ = held_;
  return peak;
}

bool ReplayBuffer::append(const Bytes& data) {
  if (!replayable()) return false;
  if (size_ + data.size > limit_) {
    drop(Dropped::kRequestLimit);
    return false;
  }
  size_ += data.size;
  size_t offset = 0;
  while (offset < data.size) {
    if (!slab_ || slab_used_ == slab_->capacity()) {
      // Small bodies take small slabs; a long one grows them geometrically up to kSlabSize.
      size_t capacity =
          std::min(kSlabSize, std::max({kFirstSlabSize, data.size - offset, 2 * (slab_ ? slab_->capacity() : 0)}));
      if (budget_ != nullptr) {
        if (!budget_->take(capacity)) {
          drop(Dropped::kBudget);
          return false;
        }
        charged_ += capacity;
      }
      slab_ = Slab::make(capacity);
      slab_used_ = 0;
    }
    size_t take = std::min(data.size - offset, slab_->capacity() - slab_used_);
    char* at = slab_->data() + slab_used_;
    std::memcpy(at, data.data + offset, take);
    // Consecutive copies into one slab extend its last piece.
    if (!pieces_.empty() && pieces_.back().owner == slab_ && pieces_.back().data + pieces_.back().size == at) {
      pieces_.back().size += take;
    } else {
      pieces_.emplace_back(slab_, at, take);
    }
    slab_used_ += take;
    offset += take;
  }
  return true;
}

void ReplayBuffer::release() {
  if (replayable()) drop(Dropped::kReleased);
}

void ReplayBuffer::drop(Dropped why) {
  dropped_ = why;
  letGo();
}

void ReplayBuffer::letGo() {
  if (charged_ > 0) budget_->give(charged_);
  charged_ = 0;
  size_ = 0;
  pieces_.clear();
  pieces_.shrink_to_fit();
  slab_.reset();
  slab_used_ = 0;
}

}  // namespace stickyproxy
