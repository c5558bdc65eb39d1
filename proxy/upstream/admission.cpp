#include "proxy/upstream/admission.h"

#include <algorithm>

namespace stickyproxy {

bool Admission::tryAdmit() {
  if (held_ || in_flight_ >= max_in_flight_ || !queue_.empty()) return false;
  ++in_flight_;
  return true;
}

Admission::Result Admission::request(uint64_t ticket, Callback on_admitted) {
  if (tryAdmit()) return Result::kAdmitted;
  if (queue_.size() >= max_queue_) return Result::kRejected;
  queue_.push_back({ticket, std::move(on_admitted)});
  return Result::kQueued;
}

void Admission::cancel(uint64_t ticket) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Waiting& waiting) { return waiting.ticket == ticket; });
  if (it != queue_.end()) queue_.erase(it);
}

void Admission::release() {
  if (in_flight_ > 0) --in_flight_;
  admitWaiting();
}

void Admission::abandonQueue() {
  std::deque<Waiting> waiting;
  waiting.swap(queue_);
  for (Waiting& request : waiting) request.on_admitted(false);
}

void Admission::setLimits(uint32_t max_in_flight, uint32_t max_queue) {
  max_in_flight_ = max_in_flight;
  max_queue_ = max_queue;
  admitWaiting();
}

void Admission::setHeld(bool held) {
  held_ = held;
  admitWaiting();
}

void Admission::admitWaiting() {
  while (!held_ && in_flight_ < max_in_flight_ && !queue_.empty()) {
    Waiting next = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    next.on_admitted(true);
  }
}

}  // namespace stickyproxy
