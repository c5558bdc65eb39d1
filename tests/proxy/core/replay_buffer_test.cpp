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
  CHECK(buffer.pieces().size() == 3);  // 64 KiB slabs
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

TEST_CASE("replay buffers share a budget: a body that would pass it is dropped, and bytes come back",
          "[core][replay]") {
  ReplayBudget budget(100);
  std::string sixty(60, 'a');
  {
    ReplayBuffer first(1000, &budget);
    ReplayBuffer second(1000, &budget);
    CHECK(first.append(Bytes::copyOf(sixty)));
    CHECK(budget.held() == 60);
    CHECK_FALSE(second.append(Bytes::copyOf(sixty)));
    CHECK(second.dropped() == ReplayBuffer::Dropped::kBudget);
    CHECK(second.pieces().empty());
    CHECK(budget.held() == 60);
    // A body over its own limit gives its bytes back at once.
    ReplayBuffer third(50, &budget);
    CHECK(third.append(Bytes::copyOf(std::string(30, 'b'))));
    CHECK(budget.held() == 90);
    CHECK_FALSE(third.append(Bytes::copyOf(std::string(30, 'b'))));
    CHECK(third.dropped() == ReplayBuffer::Dropped::kRequestLimit);
    CHECK(budget.held() == 60);
    first.release();
    CHECK(first.dropped() == ReplayBuffer::Dropped::kReleased);
    CHECK(budget.held() == 0);
    ReplayBuffer fourth(1000, &budget);
    CHECK(fourth.append(Bytes::copyOf(sixty)));
    CHECK(budget.held() == 60);
  }
  // Buffers destroyed with their bodies (a request aborted mid-upload) give them back too.
  CHECK(budget.held() == 0);
  // A lower limit on reload refuses what no longer fits; what is held stays held.
  ReplayBuffer kept(1000, &budget);
  CHECK(kept.append(Bytes::copyOf(sixty)));
  budget.setLimit(50);
  ReplayBuffer late(1000, &budget);
  CHECK_FALSE(late.append(Bytes::copyOf("x")));
  CHECK(kept.replayable());
  CHECK(budget.held() == 60);
}
