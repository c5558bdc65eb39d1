#include "proxy/core/handover.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace stickyproxy {
namespace {

int openNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

Address tcp(const std::string& host, uint16_t port) {
  Address address;
  address.kind = Address::Kind::kTcp;
  address.host = host;
  address.port = port;
  return address;
}

TEST_CASE("a handover survives its JSON, each socket with its own descriptor", "[handover][upgrade]") {
  HandoverState state;
  state.pid = 1234;
  state.version = "9.9";
  int first = openNull();
  int second = openNull();
  state.sockets.push_back(HandedSocket{"listen", *Endpoint::parse("127.0.0.1:8080"), first});
  state.sockets.push_back(HandedSocket{"admin", Endpoint::unixPath("/run/sp/admin.sock"), second});
  state.workers.push_back(HandedWorker{"w1", 77, "unix:/run/sp/w1.sock", {"/usr/bin/app", "--name", "w1"}, 3});
  std::vector<int> fds;
  std::string json = handoverJson(state, &fds);
  REQUIRE(fds == std::vector<int>{first, second});

  HandoverState parsed;
  std::string error;
  REQUIRE(parseHandover(json, fds, &parsed, &error));
  CHECK(parsed.pid == 1234);
  CHECK(parsed.version == "9.9");
  REQUIRE(parsed.sockets.size() == 2);
  CHECK(parsed.sockets[1].endpoint == Endpoint::unixPath("/run/sp/admin.sock"));
  REQUIRE(parsed.workers.size() == 1);
  CHECK(parsed.workers[0].argv == std::vector<std::string>{"/usr/bin/app", "--name", "w1"});
  CHECK(parsed.workers[0].restarts == 3);
  CHECK(parsed.worker("w1") != nullptr);
  CHECK(parsed.worker("w2") == nullptr);

  // Taken once, where the config still serves that address; the rest is closed.
  CHECK_FALSE(parsed.takeSocket("listen", tcp("127.0.0.1", 9090)));
  CHECK_FALSE(parsed.takeSocket("metrics", tcp("127.0.0.1", 8080)));
  std::optional<HandedSocket> taken = parsed.takeSocket("listen", tcp("127.0.0.1", 8080));
  REQUIRE(taken);
  CHECK(taken->fd == first);
  CHECK_FALSE(parsed.takeSocket("listen", tcp("127.0.0.1", 8080)));
  parsed.closeUntaken();
  CHECK(::fcntl(second, F_GETFD) == -1);  // closed
  CHECK(::fcntl(first, F_GETFD) != -1);   // ours
  ::close(first);
}

TEST_CASE("a configured port 0 takes the port the predecessor got", "[handover][upgrade]") {
  HandoverState state;
  int fd = openNull();
  state.sockets.push_back(HandedSocket{"listen", *Endpoint::parse("127.0.0.1:41234"), fd});
  CHECK_FALSE(state.takeSocket("listen", tcp("127.0.0.2", 0)));
  std::optional<HandedSocket> taken = state.takeSocket("listen", tcp("127.0.0.1", 0));
  REQUIRE(taken);
  CHECK(taken->endpoint.toString() == "127.0.0.1:41234");
  ::close(fd);
}

TEST_CASE("a handover that does not add up is refused whole", "[handover][upgrade]") {
  std::vector<int> fds = {100, 101};
  const char* bad[] = {
      "",
      "[]",
      "{\"sockets\":[],\"workers\":[]}",
      "{\"pid\":1,\"sockets\":[{\"role\":\"listen\",\"endpoint\":\"127.0.0.1:80\",\"fd\":2}],\"workers\":[]}",
      ("{\"pid\":1,\"sockets\":[{\"role\":\"listen\",\"endpoint\":\"127.0.0.1:80\",\"fd\":0},"
       "{\"role\":\"tls\",\"endpoint\":\"127.0.0.1:443\",\"fd\":0}],\"workers\":[]}"),
      "{\"pid\":1,\"sockets\":[{\"role\":\"listen\",\"endpoint\":\"nowhere\",\"fd\":0}],\"workers\":[]}",
      "{\"pid\":1,\"sockets\":[],\"workers\":[{\"name\":\"w1\",\"pid\":0,\"address\":\"unix:/x\"}]}",
      "{\"pid\":1,\"sockets\":[],\"workers\":[{\"name\":\"w1\",\"pid\":5,\"address\":\"unix:/x\",\"argv\":[1]}]}",
      "{\"pid\":-4,\"sockets\":[],\"workers\":[]}",
  };
  for (const char* json : bad) {
    HandoverState state;
    std::string error;
    INFO(json);
    CHECK_FALSE(parseHandover(json, fds, &state, &error));
    CHECK(error.rfind("bad handover: ", 0) == 0);
    CHECK(state.sockets.empty());
  }
}

}  // namespace
}  // namespace stickyproxy
