#include "proxy/net/stream.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "proxy/net/listener.h"
#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;

namespace {

// Collects what a stream reads, and whether it ended.
struct Reader : Stream::Handler {
  std::string received;
  bool ended = false;
  void onStreamRead(const Bytes& data) override { received.append(data.data, data.size); }
  void onStreamEnd(int /*status*/) override { ended = true; }
};

struct Quiet : Stream::Handler {
  void onStreamRead(const Bytes& /*data*/) override {}
  void onStreamEnd(int /*status*/) override {}
};

std::string pattern(size_t size, char first) {
  std::string text(size, ' ');
  for (size_t i = 0; i < size; ++i) text[i] = static_cast<char>(first + i % 23);
  return text;
}

}  // namespace

TEST_CASE("writes the kernel takes only in part go out whole and in order, in every write form", "[net]") {
  testing::TestLoop loop;
  Reader reader;
  Quiet quiet;
  std::string expected;
  {
    Listener listener(loop.get());
    StreamPtr server_side;
    REQUIRE(listener.listen(*Endpoint::parse("127.0.0.1:0"), [&](StreamPtr accepted) { server_side = accepted; }) == 0);
    StreamPtr client = Stream::create(loop.get(), Endpoint::Kind::kTcp);
    int connected = 1;
    client->connect(listener.boundEndpoint(), [&](int status) { connected = status; });
    REQUIRE(loop.runUntil([&] { return connected == 0 && server_side != nullptr; }));
    server_side->setHandler(&quiet);
    client->setHandler(&reader);
    // Small socket buffers, so that the kernel takes only part of a write.
    int small = 16 * 1024;
    REQUIRE(uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(server_side->raw()), &small) == 0);
    small = 16 * 1024;
    REQUIRE(uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(client->raw()), &small) == 0);

    // Nobody reads yet: the socket buffers fill within the first writes and the rest queues,
    // so each form below is cut somewhere inside (prefix, body, suffix, a piece past the
    // eighth, a raw string).
    for (int round = 0; round < 3; ++round) {
      std::string prefix = pattern(200 * 1024 + round, 'a');
      std::string body = pattern(300 * 1024 + 7 * round, 'A');
      std::string suffix = pattern(3 + round, '0');
      expected += prefix + body + suffix;
      server_side->write(std::move(prefix), Bytes::copyOf(body), std::move(suffix));

      // The copying form: the caller's buffers are its own again once the call returns.
      std::string head = pattern(150 * 1024 + round, 'h');
      std::string chunk = pattern(90 * 1024 + round, 'H');
      std::string tail = pattern(5 + round, '9');
      expected += head + chunk + tail;
      server_side->writeCopied(head, Bytes::copyOf(chunk), tail);
      std::fill(head.begin(), head.end(), 'x');
      std::fill(tail.begin(), tail.end(), 'x');

      std::vector<Bytes> pieces;
      for (int piece = 0; piece < 12; ++piece) {
        std::string text = pattern(40 * 1024 + piece, static_cast<char>('a' + piece));
        expected += text;
        pieces.push_back(Bytes::copyOf(text));
      }
      server_side->write(std::move(pieces));

      std::string single = pattern(100 * 1024 + round, 'k');
      expected += single;
      server_side->write(Bytes::copyOf(single));
      std::string text = pattern(70 * 1024, 'q');
      expected += text;
      server_side->write(std::move(text));
    }
    CHECK(server_side->queuedBytes() > 0);  // the test did reach the queued paths

    client->startReading();
    REQUIRE(loop.runUntil([&] { return reader.received.size() >= expected.size(); }));
    CHECK(reader.received.size() == expected.size());
    CHECK(reader.received == expected);
    CHECK(server_side->queuedBytes() == 0);
    client->close();
    server_side->close();
  }
  CHECK(loop.close() == 0);
}
