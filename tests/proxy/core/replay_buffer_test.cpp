#include "proxy/core/replay_buffer.h"

#include <catch2/catch.hpp>

#include <string>

using namespace stickyproxy;

namespace {
std::string joined(const ReplayBuffer& buffer) {
  std::string out;
  for (const Bytes& piece : buffer.pieces()) out.append(piece.view());
  return out;
}
}  // namespace

TEST_CASE("a replay buffer keeps a compact copy of the body in order, up to its limit", "[core][replay]") {
  ReplayBuffer buffer(200 * 1024);
  std::string expected;
  // A body that arrives a byte at a time in reads of their own must not pin a slab per byte.
  for (int i = 0; i < 1000; ++i) {
    SlabPtr read = Slab::make();
    read->data()[0] = static_cast<char>('a' + i % 26);
    CHECK(buffer.append(Bytes(read, read->data(), 1)));
    expected.push_back(static_cast<char>('a' + i % 26));
  }
  CHECK(buffer.pieces().size() == 1);
  std::string big(150 * 1024, 'z');
  CHECK(buffer.append(Bytes::copyOf(big)));
  expected += big;
  CHECK(joined(buffer) == expected);
  CHECK(buffer.size() == expected.size());
  CHECK(buffer.pieces().size() == 4);  // slabs of 4 KiB (the bytes, then the big piece's start), then 64 KiB
  CHECK(buffer.replayable());
}

TEST_CASE("a body over the limit lets go of everything and is no longer replayable", "[core][replay]") {
  ReplayBuffer buffer(10);
  CHECK(buffer.append(Bytes::copyOf("0123456789")));
  CHECK_FALSE(buffer.append(Bytes::copyOf("x")));
  CHECK_FALSE(buffer.replayable());
  CHECK(buffer.pieces().empty());
  CHECK_FALSE(buffer.append(Bytes::copyOf("")));
  ReplayBuffer off(0);
  CHECK(off.append(Bytes::copyOf("")));
  CHECK_FALSE(off.append(Bytes::copyOf("a")));
}

TEST_CASE("a released buffer stays released", "[core][replay]") {
  ReplayBuffer buffer(1024);
  CHECK(buffer.append(Bytes::copyOf("head")));
  buffer.release();
  CHECK_FALSE(buffer.replayable());
  CHECK_FALSE(buffer.append(Bytes::copyOf("more")));
}

TEST_CASE("replay buffers share a budget counted by their slabs: one that would pass it drops its body",
          "[core][replay]") {
  constexpr uint64_t kKib = 1024;
  ReplayBudget budget(100 * kKib);
  const std::string small(60, 'a');
  const std::string big(60 * kKib, 'b');
  {
    ReplayBuffer first(kKib * kKib, &budget);
    CHECK(first.append(Bytes::copyOf(small)));
    CHECK(budget.held() == 4 * kKib);  // a small body takes a small slab
    CHECK(first.append(Bytes::copyOf(big)));
    const uint64_t first_held = small.size() + big.size();  // then one just big enough for the rest
    CHECK(budget.held() == first_held);
    ReplayBuffer second(kKib * kKib, &budget);
    CHECK(second.append(Bytes::copyOf(small)));
    CHECK(budget.held() == first_held + 4 * kKib);
    CHECK_FALSE(second.append(Bytes::copyOf(big)));
    CHECK(second.dropped() == ReplayBuffer::Dropped::kBudget);
    CHECK(second.pieces().empty());
    CHECK(budget.held() == first_held);
    // A body over its own limit gives its slabs back at once.
    ReplayBuffer third(100, &budget);
    CHECK(third.append(Bytes::copyOf(small)));
    CHECK(budget.held() == first_held + 4 * kKib);
    CHECK_FALSE(third.append(Bytes::copyOf(small)));
    CHECK(third.dropped() == ReplayBuffer::Dropped::kRequestLimit);
    CHECK(budget.held() == first_held);
    first.release();
    CHECK(first.dropped() == ReplayBuffer::Dropped::kReleased);
    CHECK(budget.held() == 0);
    CHECK(budget.takePeak() == first_held + 4 * kKib);
    CHECK(budget.takePeak() == 0);
    ReplayBuffer fourth(kKib * kKib, &budget);
    CHECK(fourth.append(Bytes::copyOf(big)));
    CHECK(budget.held() == 60 * kKib);
  }
  // Buffers destroyed with their bodies (a request aborted mid-upload) give them back too.
  CHECK(budget.held() == 0);
  // A lower limit on reload applies to the next slab; what is held stays held.
  ReplayBuffer kept(kKib * kKib, &budget);
  CHECK(kept.append(Bytes::copyOf(big)));
  budget.setLimit(50 * kKib);
  ReplayBuffer late(kKib * kKib, &budget);
  CHECK_FALSE(late.append(Bytes::copyOf("x")));
  CHECK(kept.replayable());
  CHECK(budget.held() == 60 * kKib);
}
