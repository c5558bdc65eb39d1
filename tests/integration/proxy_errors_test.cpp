// stickyproxy end to end where it says no or waits: answers the proxy makes while the client is
// still uploading arrive whole (never as a reset), and its timeouts count only time spent
// waiting on the other party - not an upload it queued itself, not a response it held back for
// a slow reader.
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/proxy_scenarios.h"

using namespace stickyproxy::integration;

namespace {

// One TCP connection to 127.0.0.1 driven by hand, for what HttpClient does on purpose not do:
// go on uploading after an answer, stop reading for a while, and tell a clean EOF from a reset.
class RawConnection {
 public:
  // `receive_buffer` > 0 sets SO_RCVBUF, so that a client that stops reading is felt soon.
  explicit RawConnection(uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw HarnessError("socket: " + std::string(std::strerror(errno)));
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      int error = errno;
      ::close(fd_);
      throw HarnessError("connect to port " + std::to_string(port) + ": " + std::strerror(error));
    }
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends `head` and then `body_bytes` of filler, reading whatever arrives meanwhile (as a
  // browser does), until everything is sent, a send fails, or `deadline` passes. True when
  // everything was sent.
  bool upload(const std::string& head, uint64_t body_bytes, std::chrono::milliseconds deadline) {
    static const std::string kFill(256 * 1024, 'u');
    std::string_view pending = head;
    uint64_t body_left = body_bytes;
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (send_error_ == 0 && (!pending.empty() || body_left > 0) && std::chrono::steady_clock::now() < until) {
      pollfd entry{fd_, static_cast<short>(POLLOUT | (ended() ? 0 : POLLIN)), 0};
      if (::poll(&entry, 1, 50) <= 0) continue;
      if ((entry.revents & POLLIN) != 0) readAvailable();
      if ((entry.revents & (POLLOUT | POLLERR | POLLHUP)) == 0) continue;
      std::string_view piece = !pending.empty() ? pending
                                                : std::string_view(kFill).substr(0, std::min<uint64_t>(body_left, kFill.size()));
      ssize_t sent = ::send(fd_, piece.data(), piece.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) send_error_ = errno;
        continue;
      }
      if (!pending.empty()) {
        pending.remove_prefix(static_cast<size_t>(sent));
      } else {
        body_left -= static_cast<uint64_t>(sent);
      }
    }
    return pending.empty() && body_left == 0 && send_error_ == 0;
  }

  // Reads until `condition` holds, the connection ends, or `deadline` passes; returns condition().
  bool readUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!condition() && !ended() && std::chrono::steady_clock::now() < until) {
      pollfd entry{fd_, POLLIN, 0};
      if (::poll(&entry, 1, 50) > 0) readAvailable();
    }
    return condition();
  }
  // Reads to the end of the connection (EOF or an error) -> true; false after `deadline`.
  bool readToEnd(std::chrono::milliseconds deadline) {
    return readUntil([this] { return ended(); }, deadline);
  }

  // True once the peer has closed or reset the connection; reads nothing.
  bool peerGone() const {
    pollfd entry{fd_, POLLRDHUP, 0};
    return ::poll(&entry, 1, 0) > 0 && (entry.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  const std::string& received() const { return received_; }
  bool eof() const { return eof_; }
  int recvError() const { return recv_error_; }
  int sendError() const { return send_error_; }
  bool ended() const { return eof_ || recv_error_ != 0; }

 private:
  void readAvailable() {
    char buffer[65536];
    while (!ended()) {
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buffer, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) recv_error_ = errno;
        return;
      }
    }
  }

  int fd_ = -1;
  std::string received_;
  bool eof_ = false;
  int recv_error_ = 0;
  int send_error_ = 0;
};

// A response with Content-Length at the start of `text`, split into head and body; nullopt
// while it is incomplete.
struct RawResponse {
  std::string head;
  std::string body;
  int status() const { return std::stoi(head.substr(9, 3)); }
  bool has(std::string_view field) const { return head.find(field) != std::string::npos; }
};
std::optional<RawResponse> completeResponse(const std::string& text) {
  size_t head_end = text.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  size_t field = text.find("Content-Length: ");
  if (field == std::string::npos || field > head_end) return std::nullopt;
  size_t length = std::stoul(text.substr(field + 16));
  if (text.size() < head_end + 4 + length) return std::nullopt;
  return RawResponse{text.substr(0, head_end + 4), text.substr(head_end + 4, length)};
}

std::string uploadHead(const std::string& key, const std::string& path, uint64_t length) {
  return "POST " + path + " HTTP/1.1\r\nHost: test\r\nCookie: " + kCookieName + "=" + key +
         "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

// Checks that `connection` got one whole answer with `status`, then a clean EOF: no reset on
// either direction.
void checkDeliveredAnswer(RawConnection& connection, int status) {
  REQUIRE(connection.readToEnd(10s));
  INFO("received " << connection.received().size() << " bytes: " << connection.received().substr(0, 300));
  CHECK(connection.sendError() == 0);
  CHECK(connection.recvError() == 0);
  CHECK(connection.eof());
  std::optional<RawResponse> response = completeResponse(connection.received());
  REQUIRE(response.has_value());
  CHECK(response->status() == status);
  CHECK(response->has("Connection: close\r\n"));
  CHECK(response->head.size() + response->body.size() == connection.received().size());
}

}  // namespace

TEST_CASE("an upload queued for a busy worker longer than client_body_idle is served, not refused with 408",
          "[integration][errors]") {
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker",
                                                      {{"limits.worker_max_in_flight", "1"},
                                                       {"limits.worker_queue", "2"},
                                                       {"timeouts.queue", "20s"},
                                                       {"timeouts.client_body_idle", "300ms"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0xe770).front();
  Response busy;
  std::thread holder([&] {
    HttpClient client = proxy.client(20s);
    busy = asSession(client, key, "/delay?ms=1500");
  });
  REQUIRE(proxy.waitForWorker("w1", [](const WorkerStatus& status) { return status.in_flight == 1; }));
  // Five times client_body_idle in the queue, its body waiting in the socket meanwhile.
  HttpClient uploader = proxy.client(20s);
  const std::string body(1 << 20, 'q');
  Response upload = uploader.request("POST", "/count", {{"Cookie", kCookieName + "=" + key}}, body);
  holder.join();
  CHECK(busy.status == 200);
  INFO(upload.body);
  CHECK(upload.status == 200);
  CHECK(upload.body.find("\"bytes\":1048576") != std::string::npos);
}

TEST_CASE("a refusal made while the client goes on uploading arrives whole, never as a reset",
          "[integration][errors]") {
  const uint64_t body_size = uint64_t{100} << 20;
  SECTION("503 from a full queue, answered while the body is held back") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker",
                                                        {{"limits.worker_max_in_flight", "1"},
                                                         {"limits.worker_queue", "0"}}));
    proxy.start();
    const std::string key = seededSessionKeys(1, 0xe771).front();
    Response busy;
    std::thread holder([&] {
      HttpClient client = proxy.client(20s);
      busy = asSession(client, key, "/delay?ms=1000");
    });
    REQUIRE(proxy.waitForWorker("w1", [](const WorkerStatus& status) { return status.in_flight == 1; }));
    RawConnection connection(proxy.port());
    CHECK(connection.upload(uploadHead(key, "/count", body_size), body_size, 20s));
    checkDeliveredAnswer(connection, 503);
    holder.join();
    CHECK(busy.status == 200);
  }
  SECTION("413 for a declared length over limits.max_body") {
    ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker", {{"limits.max_body", "1m"}}));
    proxy.start();
    const std::string key = seededSessionKeys(1, 0xe772).front();
    RawConnection connection(proxy.port());
    CHECK(connection.upload(uploadHead(key, "/count", body_size), body_size, 20s));
    checkDeliveredAnswer(connection, 413);
  }
}

TEST_CASE("a response read more slowly than upstream_response allows is delivered whole, not cut",
          "[integration][errors]") {
  // The proxy stops reading the worker while its client lags; that wait is the client's, and
  // the worker must not be blamed for it with a cut response.
  ProxyUnderTest proxy(ProxyUnderTest::standardConfig(1, "test-worker", {{"timeouts.upstream_response", "300ms"}}));
  proxy.start();
  const std::string key = seededSessionKeys(1, 0xe773).front();
  const uint64_t size = uint64_t{32} << 20;  // far more than the sockets on the way can hold
  RawConnection connection(proxy.port(), 16 * 1024);
  const std::string request = "GET /big?bytes=" + std::to_string(size) + " HTTP/1.1\r\nHost: test\r\nCookie: " +
                              kCookieName + "=" + key + "\r\n\r\n";
  REQUIRE(connection.upload(request, 0, 5s));
  REQUIRE(connection.readUntil([&] { return connection.received().find("\r\n\r\n") != std::string::npos; }, 10s));
  // The client stops reading for five times upstream_response: the connection must stay.
  CHECK_FALSE(waitUntil([&] { return connection.peerGone(); }, 1500ms));
  REQUIRE(connection.readUntil([&] { return completeResponse(connection.received()).has_value(); }, 20s));
  std::optional<RawResponse> response = completeResponse(connection.received());
  REQUIRE(response.has_value());
  CHECK(response->status() == 200);
  CHECK(response->body.size() == size);
  CHECK(response->body == patternText(0, static_cast<size_t>(size)));
  CHECK(connection.recvError() == 0);
}
