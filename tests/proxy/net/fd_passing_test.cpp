#include "proxy/net/fd_passing.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

namespace stickyproxy {
namespace {

using std::chrono::milliseconds;

struct SocketPair {
  int ends[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0); }
  ~SocketPair() {
    for (int fd : ends) {
      if (fd >= 0) ::close(fd);
    }
  }
};

TEST_CASE("a message and its descriptors arrive whole, the descriptors usable", "[fd_passing][upgrade]") {
  SocketPair pair;
  int pipe_ends[2];
  REQUIRE(::pipe(pipe_ends) == 0);
  std::string payload(100000, 'x');  // more than one socket buffer's worth arrives in pieces
  payload.front() = '{';
  payload.back() = '}';
  std::string error;
  std::string received;
  std::vector<int> fds;
  // The receiver reads while the sender writes.
  bool sent = false;
  std::thread sender([&] {
    std::string send_error;
    sent = sendMessageWithFds(pair.ends[0], payload, {pipe_ends[1], pipe_ends[0]}, milliseconds(10000), &send_error);
  });
  REQUIRE(receiveMessageWithFds(pair.ends[1], 1 << 20, milliseconds(10000), &received, &fds, &error));
  CHECK(error.empty());
  CHECK(received == payload);
  REQUIRE(fds.size() == 2);
  CHECK((::fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
  // The first descriptor is the pipe's write end: what goes in comes out of our read end.
  REQUIRE(::write(fds[0], "ok", 2) == 2);
  char buffer[2];
  REQUIRE(::read(pipe_ends[0], buffer, 2) == 2);
  CHECK(std::string(buffer, 2) == "ok");
  for (int fd : fds) ::close(fd);
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
  sender.join();
  CHECK(sent);
}

TEST_CASE("a refusal, an oversized message or silence is an error that keeps no descriptor",
          "[fd_passing][upgrade]") {
  SocketPair pair;
  std::string error;
  std::string received;
  std::vector<int> fds;
  SECTION("a refusal line") {
    REQUIRE(writeLine(pair.ends[0], "error: not you\n", milliseconds(1000), &error));
    CHECK_FALSE(receiveMessageWithFds(pair.ends[1], 1024, milliseconds(5000), &received, &fds, &error));
    CHECK(error == "no message but \"error: not you\"");
  }
  SECTION("a message over the limit, with a descriptor") {
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(sendMessageWithFds(pair.ends[0], std::string(2000, 'a'), {devnull}, milliseconds(1000), &error));
    ::close(devnull);
    CHECK_FALSE(receiveMessageWithFds(pair.ends[1], 1024, milliseconds(5000), &received, &fds, &error));
    CHECK(error.find("no message but") == 0);
    CHECK(fds.empty());
  }
  SECTION("the sender closes halfway") {
    REQUIRE(writeLine(pair.ends[0], "10\nabc", milliseconds(1000), &error));
    ::close(pair.ends[0]);
    pair.ends[0] = -1;
    CHECK_FALSE(receiveMessageWithFds(pair.ends[1], 1024, milliseconds(5000), &received, &fds, &error));
    CHECK(error == "connection closed");
  }
  SECTION("nothing comes") {
    CHECK_FALSE(receiveMessageWithFds(pair.ends[1], 1024, milliseconds(50), &received, &fds, &error));
    CHECK(error == "timed out");
  }
}

TEST_CASE("readLine takes one line and leaves the rest", "[fd_passing][upgrade]") {
  SocketPair pair;
  std::string error;
  std::string line;
  REQUIRE(writeLine(pair.ends[0], "taken 42\nreleased\n", milliseconds(1000), &error));
  REQUIRE(readLine(pair.ends[1], 64, milliseconds(1000), &line, &error));
  CHECK(line == "taken 42");
  REQUIRE(readLine(pair.ends[1], 64, milliseconds(1000), &line, &error));
  CHECK(line == "released");
  REQUIRE(writeLine(pair.ends[0], std::string(100, 'z') + "\n", milliseconds(1000), &error));
  CHECK_FALSE(readLine(pair.ends[1], 64, milliseconds(1000), &line, &error));
  CHECK(error == "line too long");
}

}  // namespace
}  // namespace stickyproxy
