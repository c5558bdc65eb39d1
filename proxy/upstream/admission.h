// Admission control for one worker: a limit on requests in flight and a bounded queue.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

namespace stickyproxy {

// A request is admitted at once while fewer than `max_in_flight` run, else it waits in a FIFO
// queue of at most `max_queue`, else it is rejected (the caller answers 503). Requests are
// never moved to another worker for lack of room: their session's state lives on this one.
class Admission {
 public:
  enum class Result { kAdmitted, kQueued, kRejected };

  Admission(uint32_t max_in_flight, uint32_t max_queue) : max_in_flight_(max_in_flight), max_queue_(max_queue) {}

  // Called for a queued request: true when a slot is handed over (from release()), false when
  // the worker went away (from abandonQueue()) and the request must find its new pin.
  using Callback = std::function<void(bool admitted)>;

  // kQueued: `on_admitted` runs later, from release() or abandonQueue().
  Result request(uint64_t ticket, Callback on_admitted);
  // Takes a slot when one is free and nobody waits (request()'s kAdmitted); false otherwise,
  // and nothing changed: then request() queues or rejects. Saves making the callback.
  bool tryAdmit();
  // A queued request gave up (timeout, client gone). No-op when not queued.
  void cancel(uint64_t ticket);
  // An admitted request finished: its slot goes to the oldest waiting request.
  void release();
  // The worker is down: every waiting request is told so (in queue order) and the queue empties.
  void abandonQueue();
  void setLimits(uint32_t max_in_flight, uint32_t max_queue);
  // While held, every request waits in the queue (up to its ceiling) and no slot is handed out:
  // the worker is being restarted in place and its sessions wait for it. Unholding admits the
  // waiting requests as slots allow.
  void setHeld(bool held);
  bool held() const { return held_; }

  uint32_t inFlight() const { return in_flight_; }
  size_t queued() const { return queue_.size(); }

 private:
  struct Waiting {
    uint64_t ticket;
    Callback on_admitted;
  };
  void admitWaiting();

  uint32_t max_in_flight_;
  uint32_t max_queue_;
  uint32_t in_flight_ = 0;
  bool held_ = false;
  std::deque<Waiting> queue_;
};

}  // namespace stickyproxy
