#include "proxy/upstream/admission.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace stickyproxy;

TEST_CASE("admission admits up to the limit, queues in order, then rejects", "[upstream]") {
  Admission admission(2, 2);
  std::vector<int> admitted;
  CHECK(admission.request(1, [](bool) {}) == Admission::Result::kAdmitted);
  CHECK(admission.request(2, [](bool) {}) == Admission::Result::kAdmitted);
  CHECK(admission.request(3, [&](bool) { admitted.push_back(3); }) == Admission::Result::kQueued);
  CHECK(admission.request(4, [&](bool) { admitted.push_back(4); }) == Admission::Result::kQueued);
  CHECK(admission.request(5, [&](bool) { admitted.push_back(5); }) == Admission::Result::kRejected);
  CHECK(admission.inFlight() == 2);
  CHECK(admission.queued() == 2);
  admission.release();
  CHECK(admitted == std::vector<int>{3});
  admission.cancel(4);
  admission.release();
  CHECK(admitted == std::vector<int>{3});
  CHECK(admission.inFlight() == 1);
  CHECK(admission.queued() == 0);
}

TEST_CASE("a waiting request is not overtaken by a newcomer", "[upstream]") {
  Admission admission(1, 5);
  bool first_waiting_admitted = false;
  REQUIRE(admission.request(1, [](bool) {}) == Admission::Result::kAdmitted);
  REQUIRE(admission.request(2, [&](bool ok) { first_waiting_admitted = ok; }) == Admission::Result::kQueued);
  admission.release();
  CHECK(first_waiting_admitted);
  CHECK(admission.request(3, [](bool) {}) == Admission::Result::kQueued);
}

TEST_CASE("raising the limits on reload admits waiting requests", "[upstream]") {
  Admission admission(1, 5);
  int admitted = 0;
  admission.request(1, [](bool) {});
  admission.request(2, [&](bool) { ++admitted; });
  admission.request(3, [&](bool) { ++admitted; });
  admission.setLimits(3, 5);
  CHECK(admitted == 2);
  CHECK(admission.inFlight() == 3);
}

TEST_CASE("when the worker goes down its waiting requests are told, in order, and the queue empties", "[upstream]") {
  Admission admission(1, 5);
  std::vector<std::pair<int, bool>> told;
  admission.request(1, [](bool) {});
  admission.request(2, [&](bool ok) { told.emplace_back(2, ok); });
  admission.request(3, [&](bool ok) { told.emplace_back(3, ok); });
  admission.abandonQueue();
  CHECK(told == std::vector<std::pair<int, bool>>{{2, false}, {3, false}});
  CHECK(admission.queued() == 0);
  admission.release();
  CHECK(told.size() == 2);
}

TEST_CASE("a held worker queues every request, even with free slots, and admits them in order once let go",
          "[upstream]") {
  Admission admission(4, 3);
  CHECK(admission.request(1, [](bool) {}) == Admission::Result::kAdmitted);
  admission.setHeld(true);
  std::vector<int> admitted;
  for (int ticket = 2; ticket <= 4; ++ticket) {
    CHECK(admission.request(ticket, [&, ticket](bool ok) { admitted.push_back(ok ? ticket : -ticket); }) ==
          Admission::Result::kQueued);
  }
  CHECK(admission.request(5, [](bool) {}) == Admission::Result::kRejected);  // the queue's ceiling holds
  admission.release();  // a slot frees up: still held
  CHECK(admitted.empty());
  CHECK(admission.inFlight() == 0);
  admission.setHeld(false);
  CHECK(admitted == std::vector<int>{2, 3, 4});
  CHECK(admission.inFlight() == 3);
}
