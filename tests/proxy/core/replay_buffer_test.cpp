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
