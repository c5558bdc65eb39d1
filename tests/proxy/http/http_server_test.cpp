// The server and client halves of the HTTP stack against each other, in one loop.
#include "proxy/http/http_server.h"

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "proxy/http/http_client.h"
#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;

namespace {

Endpoint loopbackAnyPort() { return *Endpoint::parse("127.0.0.1:0"); }

// Follows one client exchange and records what arrived.
struct ClientRecorder : ClientExchangeHandler {
  int heads = 0;
  int completions = 0;
  int failures = 0;
  int status = 0;
  ClientFailure failure = ClientFailure::kBadResponse;
  std::string body;
  HeaderList headers;
  void onResponseHead(ResponseHead&& head) override {
    ++heads;
    status = head.status;
    headers = std::move(head.headers);
  }
  void onResponseBody(const Bytes& data) override { body.append(data.data, data.size); }
  void onResponseComplete() override { ++completions; }
  void onFailure(ClientFailure why, int) override {
    ++failures;
    failure = why;
  }
};

// Sums a streamed request body and answers with its size once it is complete.
struct CountingHandler : ExchangeHandler {
  explicit CountingHandler(ServerExchangePtr exchange) : exchange_(std::move(exchange)) {}
  void onRequestBody(const Bytes& data) override { bytes_ += data.size; }
  void onRequestComplete() override { exchange_->respond(200, "text/plain", std::to_string(bytes_)); }
  ServerExchangePtr exchange_;
  uint64_t bytes_ = 0;
};

RequestHead get(std::string target) {
  RequestHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.headers.add("Host", "test");
  return head;
}

}  // namespace

TEST_CASE("three requests share one keep-alive connection and every callback fires once", "[http]") {
  testing::TestLoop loop;
  int served = 0;
  {
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      ++served;
      exchange->respond(200, "text/plain", "hello " + std::string(exchange->request().path()));
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
    int connect_status = 1;
    connection->connect(std::chrono::seconds(2), [&](int status) { connect_status = status; });
    REQUIRE(loop.runUntil([&] { return connect_status != 1; }));
    REQUIRE(connect_status == 0);

    for (int i = 0; i < 3; ++i) {
      ClientRecorder recorder;
      connection->startRequest(get("/r" + std::to_string(i)), &recorder, std::chrono::seconds(2));
      REQUIRE(loop.runUntil([&] { return recorder.completions + recorder.failures > 0; }));
      CHECK(recorder.heads == 1);
      CHECK(recorder.completions == 1);
      CHECK(recorder.failures == 0);
      CHECK(recorder.body == "hello /r" + std::to_string(i));
      CHECK(connection->reusable());
    }
    CHECK(served == 3);
    CHECK(server.connectionCount() == 1);
    connection->close();
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a chunked request body streams to the handler and a response is chunked back", "[http]") {
  testing::TestLoop loop;
  {
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      exchange->setHandler(std::make_shared<CountingHandler>(exchange));
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
    int connect_status = 1;
    connection->connect(std::chrono::seconds(2), [&](int status) { connect_status = status; });
    REQUIRE(loop.runUntil([&] { return connect_status == 0; }));

    RequestHead head = get("/upload");
    head.method = "POST";
    head.framing.chunked = true;
    ClientRecorder recorder;
    connection->startRequest(head, &recorder, std::chrono::seconds(2));
    std::string piece(100000, 'x');
    for (int i = 0; i < 20; ++i) connection->sendBody(Bytes::copyOf(piece));
    connection->endBody();
    REQUIRE(loop.runUntil([&] { return recorder.completions + recorder.failures > 0; }));
    CHECK(recorder.status == 200);
    CHECK(recorder.body == "2000000");
    connection->close();
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("connecting where nothing listens fails once, through the callback", "[http]") {
  testing::TestLoop loop;
  uint16_t port = 0;
  {
    // Find a port that is free now: listen, note it, close.
    HttpServer probe(loop.get(), ServerOptions{}, [](const ServerExchangePtr&) {});
    REQUIRE(probe.listen(loopbackAnyPort()) == 0);
    port = probe.boundEndpoint().port();
  }
  int calls = 0;
  int result = 0;
  {
    ClientConnectionPtr connection =
        ClientConnection::create(loop.get(), *Endpoint::parse("127.0.0.1:" + std::to_string(port)));
    connection->connect(std::chrono::seconds(2), [&](int status) {
      ++calls;
      result = status;
    });
    CHECK(calls == 0);  // never from inside connect()
    REQUIRE(loop.runUntil([&] { return calls > 0; }));
  }
  CHECK(calls == 1);
  CHECK(result == UV_ECONNREFUSED);
  CHECK(loop.close() == 0);
}

TEST_CASE("a server that is shut down closes idle connections and reports done once", "[http]") {
  testing::TestLoop loop;
  int done = 0;
  {
    HttpServer server(loop.get(), ServerOptions{}, [](const ServerExchangePtr& exchange) {
      exchange->respond(204, "", "");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
    int connect_status = 1;
    connection->connect(std::chrono::seconds(2), [&](int status) { connect_status = status; });
    REQUIRE(loop.runUntil([&] { return connect_status == 0 && server.connectionCount() == 1; }));
    server.shutdown(std::chrono::seconds(1), [&] { ++done; });
    REQUIRE(loop.runUntil([&] { return done > 0; }));
    CHECK(server.connectionCount() == 0);
    connection->close();
  }
  CHECK(done == 1);
  CHECK(loop.close() == 0);
}

namespace {

// Streams an endless response with backpressure until the exchange is aborted.
struct EndlessBodyHandler : ExchangeHandler {
  explicit EndlessBodyHandler(ServerExchangePtr exchange) : exchange_(std::move(exchange)) {}
  void start() {
    ResponseHead head;
    head.headers.add("Content-Type", "application/octet-stream");
    exchange_->sendHead(std::move(head), uint64_t{1} << 40);
    pump();
  }
  void pump() {
    while (exchange_->active() && !exchange_->overHighWater()) exchange_->sendBody(std::string(64 * 1024, 'x'));
  }
  void onWritable() override { pump(); }
  void onAbort(const std::string&) override { aborted = true; }
  ServerExchangePtr exchange_;
  bool aborted = false;
};

}  // namespace

TEST_CASE("a client that half-closes and then goes away mid-response aborts the exchange", "[http]") {
  // The EOF of the half-close lets the response go on; the reset that follows must still end
  // it, or the handler waits for a drain that never comes and the connection is held for ever.
  testing::TestLoop loop;
  {
    std::shared_ptr<EndlessBodyHandler> handler;
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      handler = std::make_shared<EndlessBodyHandler>(exchange);
      exchange->setHandler(handler);
      handler->start();
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    const Endpoint endpoint = server.boundEndpoint();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    ::connect(fd, endpoint.sockaddrPtr(), sizeof(sockaddr_in));  // EINPROGRESS on loopback
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == 1; }));
    const std::string request = "GET /endless HTTP/1.1\r\nHost: test\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    size_t received = 0;
    char buffer[65536];
    REQUIRE(loop.runUntil([&] {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) received += static_cast<size_t>(n);
      return received > 256 * 1024;
    }));
    ::shutdown(fd, SHUT_WR);
    loop.runUntil([] { return false; }, std::chrono::milliseconds(100));  // the server reads the EOF
    REQUIRE(handler != nullptr);
    CHECK_FALSE(handler->aborted);  // a half-close alone lets the response go on
    ::close(fd);  // unread data: a reset
    CHECK(loop.runUntil([&] { return handler->aborted && server.connectionCount() == 0; }));
  }
  CHECK(loop.close() == 0);
}

namespace {

// A non-blocking raw TCP client that uploads while it reads, the way a browser or curl does,
// and records how the connection ended: a clean EOF, or an error on reading or sending.
class UploadingClient {
 public:
  explicit UploadingClient(const Endpoint& endpoint) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::connect(fd_, endpoint.sockaddrPtr(), sizeof(sockaddr_in));  // EINPROGRESS on loopback
  }
  ~UploadingClient() { close(); }
  UploadingClient(const UploadingClient&) = delete;
  UploadingClient& operator=(const UploadingClient&) = delete;

  bool open() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Queues `bytes` to go out (the head, or `size` bytes of body).
  void queue(std::string bytes) { outgoing_ += bytes; }
  void queueBody(uint64_t size) { body_left_ += size; }
  bool allSent() const { return outgoing_.empty() && body_left_ == 0; }
  // Sends what the socket takes now (at most `limit` bytes) and reads what has arrived.
  void pump(size_t limit = SIZE_MAX) {
    static const std::string kFill(256 * 1024, 'b');
    while (send_error_ == 0 && limit > 0 && !allSent()) {
      const char* data;
      size_t size;
      if (!outgoing_.empty()) {
        data = outgoing_.data();
        size = outgoing_.size();
      } else {
        data = kFill.data();
        size = static_cast<size_t>(std::min<uint64_t>(body_left_, kFill.size()));
      }
      size = std::min(size, limit);
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) send_error_ = errno;
        break;
      }
      limit -= static_cast<size_t>(n);
      if (!outgoing_.empty()) {
        outgoing_.erase(0, static_cast<size_t>(n));
      } else {
        body_left_ -= static_cast<uint64_t>(n);
      }
    }
    char buffer[65536];
    while (!eof_ && recv_error_ == 0) {
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buffer, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK) recv_error_ = errno;
        break;
      }
    }
  }

  const std::string& received() const { return received_; }
  bool eof() const { return eof_; }
  int recvError() const { return recv_error_; }
  int sendError() const { return send_error_; }
  bool ended() const { return eof_ || recv_error_ != 0; }

 private:
  int fd_ = -1;
  std::string outgoing_;
  uint64_t body_left_ = 0;
  std::string received_;
  bool eof_ = false;
  int recv_error_ = 0;
  int send_error_ = 0;
};

std::string uploadHead(uint64_t content_length) {
  return "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(content_length) + "\r\n\r\n";
}

// The whole of a Content-Length response at the start of `text`, or "" while it is incomplete.
std::string completeResponse(const std::string& text) {
  size_t head_end = text.find("\r\n\r\n");
  if (head_end == std::string::npos) return "";
  size_t field = text.find("Content-Length: ");
  if (field == std::string::npos || field > head_end) return "";
  size_t length = std::stoul(text.substr(field + 16));
  size_t total = head_end + 4 + length;
  return text.size() >= total ? text.substr(0, total) : "";
}

}  // namespace

TEST_CASE("an early answer to a 100 MB upload is read whole and ends in EOF, not a reset", "[http]") {
  // The application answers while it holds the body back (the proxy's 503 for a full queue).
  // The server must keep reading and dropping the upload after the answer, or close() with
  // unread bytes sends a reset that fails the client's sends and destroys the answer.
  testing::TestLoop loop;
  {
    int served = 0;
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      ++served;
      exchange->pauseRequestBody();
      exchange->respond(503, "text/plain", "busy\n");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    UploadingClient client(server.boundEndpoint());
    REQUIRE(client.open());
    const uint64_t body_size = uint64_t{100} << 20;
    client.queue(uploadHead(body_size));
    client.queueBody(body_size);
    REQUIRE(loop.runUntil([&] {
      client.pump();
      return client.ended() || client.sendError() != 0;
    }, std::chrono::seconds(10)));
    CHECK(client.eof());
    CHECK(client.recvError() == 0);
    std::string response = completeResponse(client.received());
    CHECK(response.rfind("HTTP/1.1 503 ", 0) == 0);
    CHECK(response.find("Connection: close\r\n") != std::string::npos);
    CHECK(response.size() == client.received().size());
    CHECK(response.substr(response.size() - 5) == "busy\n");
    // The client goes on uploading after the answer: every byte is taken, none reset.
    CHECK(loop.runUntil([&] {
      client.pump();
      return client.allSent() || client.sendError() != 0;
    }, std::chrono::seconds(20)));
    CHECK(client.sendError() == 0);
    // With the whole body read and dropped the server closes at once.
    CHECK(loop.runUntil([&] { return server.connectionCount() == 0; }));
    CHECK(served == 1);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a refused upload that goes on sending longer than the old linger is not reset", "[http]") {
  // A 413 from the head: the request's end is unknown after a parse error, so the server
  // discards while input keeps coming and closes once the client has gone quiet.
  testing::TestLoop loop;
  {
    ServerOptions options;
    options.limits.max_body = 1024;
    options.linger_idle = std::chrono::milliseconds(500);
    int errors = 0;
    options.on_protocol_error = [&](const Endpoint&, const ProtocolError& error) { errors += error.status == 413; };
    HttpServer server(loop.get(), options, [](const ServerExchangePtr& exchange) {
      exchange->respond(200, "text/plain", "unexpected\n");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    UploadingClient client(server.boundEndpoint());
    REQUIRE(client.open());
    client.queue(uploadHead(uint64_t{1} << 30));
    REQUIRE(loop.runUntil([&] {
      client.pump();
      return client.ended();
    }));
    CHECK(client.eof());
    CHECK(client.received().rfind("HTTP/1.1 413 ", 0) == 0);
    // Paced sending for three seconds, every gap well under linger_idle.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    auto next = std::chrono::steady_clock::now();
    loop.runUntil([&] {
      auto now = std::chrono::steady_clock::now();
      if (now >= next) {
        client.queueBody(64 * 1024);
        next = now + std::chrono::milliseconds(50);
      }
      client.pump();
      return now >= until || client.sendError() != 0;
    }, std::chrono::seconds(5));
    CHECK(client.sendError() == 0);
    CHECK(server.connectionCount() == 1);
    // Quiet now: the server closes after linger_idle, with nothing unread, so no reset.
    CHECK(loop.runUntil([&] {
      client.pump();
      return server.connectionCount() == 0;
    }));
    client.pump();
    CHECK(client.recvError() == 0);
    CHECK(errors == 1);
  }
  CHECK(loop.close() == 0);
}

namespace {

// Holds the request body back until told, then sums it and answers with its size.
struct HeldBodyHandler : ExchangeHandler {
  explicit HeldBodyHandler(ServerExchangePtr exchange) : exchange_(std::move(exchange)) {}
  void onRequestBody(const Bytes& data) override { bytes_ += data.size; }
  void onRequestComplete() override { exchange_->respond(200, "text/plain", std::to_string(bytes_)); }
  void onAbort(const std::string&) override { ++aborts; }
  ServerExchangePtr exchange_;
  uint64_t bytes_ = 0;
  int aborts = 0;
};

}  // namespace

TEST_CASE("the body idle timeout stops while the application holds the body and runs when the client stalls",
          "[http]") {
  testing::TestLoop loop;
  {
    ServerOptions options;
    options.body_idle_timeout = std::chrono::milliseconds(200);
    std::vector<std::shared_ptr<HeldBodyHandler>> handlers;
    int refused = 0;
    options.on_protocol_error = [&](const Endpoint&, const ProtocolError& error) { refused += error.status == 408; };
    HttpServer server(loop.get(), options, [&](const ServerExchangePtr& exchange) {
      auto handler = std::make_shared<HeldBodyHandler>(exchange);
      handlers.push_back(handler);
      exchange->setHandler(handler);
      exchange->pauseRequestBody();  // like an upload queued for a busy worker
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);

    // Held for three times the timeout, with the whole body waiting in the socket: no 408.
    // The body goes after the head has been taken: bytes read with the head are handed on.
    UploadingClient held(server.boundEndpoint());
    held.queue(uploadHead(5000));
    REQUIRE(loop.runUntil([&] {
      held.pump();
      return handlers.size() == 1;
    }));
    held.queueBody(5000);
    REQUIRE(loop.runUntil([&] {
      held.pump();
      return held.allSent();
    }));
    CHECK_FALSE(loop.runUntil([&] {
      held.pump();
      return !held.received().empty() || held.ended();
    }, std::chrono::milliseconds(600)));
    CHECK(refused == 0);
    handlers[0]->exchange_->resumeRequestBody();
    REQUIRE(loop.runUntil([&] {
      held.pump();
      return !completeResponse(held.received()).empty() || held.ended();
    }));
    CHECK(held.received().rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(handlers[0]->bytes_ == 5000);

    // Resumed, and then the client stops sending half-way: 408 after the timeout.
    UploadingClient stalled(server.boundEndpoint());
    stalled.queue(uploadHead(5000));
    REQUIRE(loop.runUntil([&] {
      stalled.pump();
      return handlers.size() == 2;
    }));
    stalled.queueBody(2500);
    stalled.pump();
    handlers[1]->exchange_->resumeRequestBody();
    const auto resumed = std::chrono::steady_clock::now();
    REQUIRE(loop.runUntil([&] {
      stalled.pump();
      return !completeResponse(stalled.received()).empty() || stalled.ended();
    }));
    CHECK(std::chrono::steady_clock::now() - resumed >= std::chrono::milliseconds(150));
    CHECK(stalled.received().rfind("HTTP/1.1 408 ", 0) == 0);
    CHECK(refused == 1);
    CHECK(handlers[1]->aborts == 1);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("an exchange held after it completed keeps no link to its connection", "[http]") {
  testing::TestLoop loop;
  ServerExchangePtr held;
  {
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      held = exchange;
      exchange->respond(200, "text/plain", "done");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
    int connect_status = 1;
    connection->connect(std::chrono::seconds(2), [&](int status) { connect_status = status; });
    REQUIRE(loop.runUntil([&] { return connect_status == 0; }));
    ClientRecorder recorder;
    connection->startRequest(get("/"), &recorder, std::chrono::seconds(2));
    REQUIRE(loop.runUntil([&] { return recorder.completions > 0; }));
    connection->close();
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == 0; }));
  }
  // The connection is gone: a held exchange answers from itself and ignores calls.
  REQUIRE(loop.runUntil([] { return false; }, std::chrono::milliseconds(20)) == false);
  REQUIRE(held != nullptr);
  CHECK_FALSE(held->active());
  CHECK(held->queuedBytes() == 0);
  CHECK_FALSE(held->overHighWater());
  held->sendBody(std::string("late"));
  held->abort();
  held.reset();
  CHECK(loop.close() == 0);
}

namespace {

// Holds the response back as soon as its head arrives, like a proxy whose client reads slowly.
struct PausingRecorder : ClientRecorder {
  ClientConnection* connection = nullptr;
  void onResponseHead(ResponseHead&& head) override {
    ClientRecorder::onResponseHead(std::move(head));
    connection->pauseResponse();
  }
};

// Answers at once with a chunked head and echoes the request body as it comes.
struct EchoHandler : ExchangeHandler {
  explicit EchoHandler(ServerExchangePtr exchange) : exchange_(std::move(exchange)) {}
  void start() { exchange_->sendHead(ResponseHead{}, std::nullopt); }
  void onRequestBody(const Bytes& data) override { exchange_->sendBody(data); }
  void onRequestComplete() override { exchange_->finish(); }
  ServerExchangePtr exchange_;
};

ClientConnectionPtr connectTo(testing::TestLoop& loop, const HttpServer& server) {
  ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
  int connect_status = 1;
  connection->connect(std::chrono::seconds(2), [&](int status) { connect_status = status; });
  REQUIRE(loop.runUntil([&] { return connect_status != 1; }));
  REQUIRE(connect_status == 0);
  return connection;
}

}  // namespace

TEST_CASE("the response timeout stops while the response is held back and runs when the server stalls", "[http]") {
  testing::TestLoop loop;
  {
    std::vector<ServerExchangePtr> stalled;
    const std::string big(4 << 20, 'r');
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      if (exchange->request().path() == "/big") {
        exchange->respond(200, "application/octet-stream", big);
        return;
      }
      stalled.push_back(exchange);  // a head and a first piece, then nothing
      exchange->sendHead(ResponseHead{}, std::nullopt);
      exchange->sendBody(std::string("part"));
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = connectTo(loop, server);
    const auto timeout = std::chrono::milliseconds(200);

    // Held back for three times the timeout: no failure, and the whole body once resumed.
    PausingRecorder slow_reader;
    slow_reader.connection = connection.get();
    connection->startRequest(get("/big"), &slow_reader, timeout);
    REQUIRE(loop.runUntil([&] { return slow_reader.heads > 0; }));
    CHECK_FALSE(loop.runUntil([&] { return slow_reader.failures > 0; }, std::chrono::milliseconds(600)));
    connection->resumeResponse();
    REQUIRE(loop.runUntil([&] { return slow_reader.completions + slow_reader.failures > 0; }));
    CHECK(slow_reader.failures == 0);
    CHECK(slow_reader.body == big);
    REQUIRE(connection->reusable());

    // The server stops mid-body: the timeout fires, once.
    ClientRecorder recorder;
    const auto started = std::chrono::steady_clock::now();
    connection->startRequest(get("/stall"), &recorder, timeout);
    REQUIRE(loop.runUntil([&] { return recorder.completions + recorder.failures > 0; }));
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(150));
    CHECK(recorder.failures == 1);
    CHECK(recorder.failure == ClientFailure::kResponseTimeout);
    CHECK(recorder.body == "part");
    CHECK(recorder.completions == 0);
    connection->close();
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("the response timeout does not run while our slow upload is still going", "[http]") {
  // The server answers at once and echoes: until our body ends it waits on us, not we on it.
  testing::TestLoop loop;
  {
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      auto handler = std::make_shared<EchoHandler>(exchange);
      exchange->setHandler(handler);
      handler->start();
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = connectTo(loop, server);
    RequestHead head = get("/echo");
    head.method = "POST";
    head.framing.chunked = true;
    ClientRecorder recorder;
    connection->startRequest(head, &recorder, std::chrono::milliseconds(200));
    connection->sendBody(Bytes::copyOf("slow "));
    REQUIRE(loop.runUntil([&] { return recorder.body == "slow "; }));
    CHECK_FALSE(loop.runUntil([&] { return recorder.failures > 0; }, std::chrono::milliseconds(600)));
    connection->sendBody(Bytes::copyOf("upload"));
    CHECK_FALSE(loop.runUntil([&] { return recorder.failures > 0; }, std::chrono::milliseconds(300)));
    connection->endBody();
    REQUIRE(loop.runUntil([&] { return recorder.completions + recorder.failures > 0; }));
    CHECK(recorder.failures == 0);
    CHECK(recorder.status == 200);
    CHECK(recorder.body == "slow upload");
    connection->close();
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("the response timeout runs while the server does not take our request body", "[http]") {
  testing::TestLoop loop;
  {
    std::vector<ServerExchangePtr> held;
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      held.push_back(exchange);
      exchange->pauseRequestBody();  // and never resumes
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    ClientConnectionPtr connection = connectTo(loop, server);
    connection->setWriteHighWater(64 * 1024);
    RequestHead head = get("/upload");
    head.method = "POST";
    head.framing.content_length = uint64_t{64} << 20;
    ClientRecorder recorder;
    connection->startRequest(head, &recorder, std::chrono::milliseconds(200));
    connection->sendBody(Bytes::copyOf(std::string(16 << 20, 'u')));
    REQUIRE(connection->overHighWater());
    REQUIRE(loop.runUntil([&] { return recorder.failures > 0; }));
    CHECK(recorder.failure == ClientFailure::kResponseTimeout);
  }
  CHECK(loop.close() == 0);
}

namespace {

// A raw non-blocking client socket for the admission and send-idle cases.
// `receive_buffer`: SO_RCVBUF when non-zero (a small one keeps the server's send buffer small).
int connectRaw(const Endpoint& endpoint, int receive_buffer = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  if (receive_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  ::connect(fd, endpoint.sockaddrPtr(), sizeof(sockaddr_in));  // EINPROGRESS on loopback
  return fd;
}

// Reads what is there; true once the peer closed (EOF or reset).
bool readAvailable(int fd, std::string* into) {
  char buffer[65536];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      into->append(buffer, static_cast<size_t>(n));
      continue;
    }
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

}  // namespace

TEST_CASE("admission: a connection over the limit is answered 429 with Retry-After, one far over is closed",
          "[http]") {
  testing::TestLoop loop;
  {
    std::vector<ConnectionAdmission> decisions = {ConnectionAdmission::kAdmitted, ConnectionAdmission::kOverLimit,
                                                  ConnectionAdmission::kClose};
    size_t next = 0;
    std::vector<ConnectionAdmission> released;
    std::vector<std::string> cuts;
    std::vector<int> refusals;
    int served = 0;
    ServerOptions options;
    options.over_limit_retry_after = 7;
    options.admit = [&](const Endpoint&) { return decisions.at(next++); };
    options.release = [&](const Endpoint& peer, ConnectionAdmission admission) {
      CHECK(peer.host() == "127.0.0.1");
      released.push_back(admission);
    };
    options.on_connection_cut = [&](const Endpoint&, std::string_view reason) { cuts.emplace_back(reason); };
    options.on_protocol_error = [&](const Endpoint&, const ProtocolError& error) { refusals.push_back(error.status); };
    HttpServer server(loop.get(), options, [&](const ServerExchangePtr& exchange) {
      ++served;
      exchange->respond(200, "text/plain", "served");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    const std::string request = "GET /x HTTP/1.1\r\nHost: test\r\n\r\n";
    std::string answers[3];
    bool ended[3] = {false, false, false};
    int fds[3];
    for (int i = 0; i < 3; ++i) {
      fds[i] = connectRaw(server.boundEndpoint());
      REQUIRE(loop.runUntil([&] { return next == static_cast<size_t>(i + 1); }));
      ::send(fds[i], request.data(), request.size(), MSG_NOSIGNAL);
    }
    REQUIRE(loop.runUntil([&] {
      for (int i = 0; i < 3; ++i) {
        if (!ended[i]) ended[i] = readAvailable(fds[i], &answers[i]);
      }
      return answers[0].find("served") != std::string::npos && ended[1] && ended[2];
    }));
    CHECK(served == 1);
    CHECK_FALSE(ended[0]);  // the admitted connection stays open (keep-alive)
    CHECK(answers[1].rfind("HTTP/1.1 429 Too Many Requests\r\n", 0) == 0);
    CHECK(answers[1].find("\r\nRetry-After: 7\r\n") != std::string::npos);
    CHECK(answers[1].find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(answers[2].empty());
    CHECK(refusals == std::vector<int>{429});
    CHECK(cuts == std::vector<std::string>{"over_limit"});
    // Released once each when they close; the closed one was never counted.
    REQUIRE(loop.runUntil([&] { return released.size() == 1; }));
    CHECK(released[0] == ConnectionAdmission::kOverLimit);
    ::close(fds[0]);
    REQUIRE(loop.runUntil([&] { return released.size() == 2; }));
    CHECK(released[1] == ConnectionAdmission::kAdmitted);
    ::close(fds[1]);
    ::close(fds[2]);
    CHECK(loop.runUntil([&] { return server.connectionCount() == 0; }));
    CHECK(released.size() == 2);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("send idle: a client that reads nothing of a large response is cut; one that reads slowly is not",
          "[http]") {
  testing::TestLoop loop;
  {
    std::vector<std::shared_ptr<EndlessBodyHandler>> handlers;
    std::vector<std::string> cuts;
    ServerOptions options;
    options.write_high_water = 64 * 1024;
    options.send_idle_timeout = std::chrono::milliseconds(400);
    options.on_connection_cut = [&](const Endpoint&, std::string_view reason) { cuts.emplace_back(reason); };
    HttpServer server(loop.get(), options, [&](const ServerExchangePtr& exchange) {
      auto handler = std::make_shared<EndlessBodyHandler>(exchange);
      handlers.push_back(handler);
      exchange->setHandler(handler);
      handler->start();
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    const std::string request = "GET /endless HTTP/1.1\r\nHost: test\r\n\r\n";

    int stalled = connectRaw(server.boundEndpoint());
    int slow = connectRaw(server.boundEndpoint());
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == 2; }));
    ::send(stalled, request.data(), request.size(), MSG_NOSIGNAL);
    ::send(slow, request.data(), request.size(), MSG_NOSIGNAL);
    REQUIRE(loop.runUntil([&] { return handlers.size() == 2; }));

    // The slow reader takes 128 KiB every 100 ms for 2 s, five times the send idle bound.
    auto started = std::chrono::steady_clock::now();
    auto last_read = started;
    uint64_t slow_received = 0;
    loop.runUntil(
        [&] {
          auto now = std::chrono::steady_clock::now();
          if (now - last_read >= std::chrono::milliseconds(100)) {
            last_read = now;
            char buffer[128 * 1024];
            ssize_t n = ::recv(slow, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n > 0) slow_received += static_cast<uint64_t>(n);
          }
          return false;
        },
        std::chrono::milliseconds(2000));
    CHECK(slow_received > 1024 * 1024);
    CHECK(handlers[0]->aborted);       // the stalled one was cut...
    CHECK_FALSE(handlers[1]->aborted);  // ...the slow one still goes on
    CHECK(cuts == std::vector<std::string>{"send_idle"});
    CHECK(server.connectionCount() == 1);
    ::close(stalled);
    ::close(slow);
    CHECK(loop.runUntil([&] { return server.connectionCount() == 0; }));
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("send idle: clients that read part of a response and then stop are cut", "[http]") {
  // Twenty clients stop after reading different amounts, with a small receive buffer so that
  // the server's own buffer stays small too. (The bound runs until the queue drains, not only
  // while it is over the mark: a queue left between a quarter of the mark and the mark waits
  // for a drain as well. On loopback the queue comes to rest over the mark, so this test cannot
  // stage that band.)
  constexpr int kClients = 20;
  testing::TestLoop loop;
  {
    std::vector<std::shared_ptr<EndlessBodyHandler>> handlers;
    int cuts = 0;
    ServerOptions options;
    options.write_high_water = 64 * 1024;
    options.send_idle_timeout = std::chrono::milliseconds(300);
    options.on_connection_cut = [&](const Endpoint&, std::string_view reason) { cuts += reason == "send_idle"; };
    HttpServer server(loop.get(), options, [&](const ServerExchangePtr& exchange) {
      auto handler = std::make_shared<EndlessBodyHandler>(exchange);
      handlers.push_back(handler);
      exchange->setHandler(handler);
      handler->start();
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    const std::string request = "GET /endless HTTP/1.1\r\nHost: test\r\n\r\n";
    std::vector<int> fds;
    std::vector<size_t> quota;
    std::vector<size_t> read(kClients, 0);
    for (int i = 0; i < kClients; ++i) {
      fds.push_back(connectRaw(server.boundEndpoint(), 4096));
      quota.push_back(static_cast<size_t>(i + 1) * 37 * 1024);
    }
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == kClients; }));
    for (int fd : fds) ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    // Each reads its quota, 16 KiB at a time while the server writes, then stops for good.
    std::vector<char> buffer(16 * 1024);
    REQUIRE(loop.runUntil(
        [&] {
          bool all_done = true;
          for (int i = 0; i < kClients; ++i) {
            if (read[i] >= quota[i]) continue;
            all_done = false;
            ssize_t n = ::recv(fds[i], buffer.data(), std::min(buffer.size(), quota[i] - read[i]), MSG_DONTWAIT);
            if (n > 0) read[i] += static_cast<size_t>(n);
          }
          return all_done;
        },
        std::chrono::seconds(20)));
    CHECK(loop.runUntil([&] { return cuts == kClients; }, std::chrono::seconds(10)));
    for (const auto& handler : handlers) CHECK(handler->aborted);
    for (int fd : fds) ::close(fd);
    CHECK(loop.runUntil([&] { return server.connectionCount() == 0; }));
  }
  CHECK(loop.close() == 0);
}

namespace {

// A blocking-free raw client: connects to `endpoint`, sends what it is told, and collects what
// arrives until the server closes.
struct RawClient {
  explicit RawClient(const Endpoint& endpoint) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(fd, endpoint.sockaddrPtr(), sizeof(sockaddr_in));
  }
  ~RawClient() { ::close(fd); }
  void send(const std::string& text) { REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size())); }
  // Reads what is there; true once the server closed.
  bool poll() {
    char buffer[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        received.append(buffer, size_t(n));
        continue;
      }
      if (n == 0) closed = true;
      return closed;
    }
  }
  int fd;
  std::string received;
  bool closed = false;
};

}  // namespace

TEST_CASE("a stop spares an idle keep-alive connection for its next request, answered with close",
          "[http][upgrade]") {
  testing::TestLoop loop;
  int done = 0;
  {
    HttpServer server(loop.get(), ServerOptions{}, [](const ServerExchangePtr& exchange) {
      exchange->respond(200, "text/plain", "ok");
    });
    REQUIRE(server.listen(loopbackAnyPort()) == 0);
    RawClient busy(server.boundEndpoint());
    RawClient idle(server.boundEndpoint());
    busy.send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(loop.runUntil([&] { return busy.poll() || busy.received.find("ok") != std::string::npos; }));
    REQUIRE(loop.runUntil([&] { return server.connectionCount() == 2; }));
    CHECK(busy.received.find("Connection: close") == std::string::npos);  // kept alive so far

    bool hand_over = false;
    // A grace far longer than the waits below: what closes the idle connection is not the grace.
    SECTION("a stop") { server.shutdown(std::chrono::seconds(60), [&] { ++done; }); }
    SECTION("a hand-over") {
      hand_over = true;
      server.handOver(std::chrono::seconds(60), [&] { ++done; });
    }
    // The client that sends its next request just now gets it answered, and told to go.
    busy.received.clear();
    busy.send("GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(loop.runUntil([&] { return busy.poll(); }));
    CHECK(busy.received.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(busy.received.find("Connection: close") != std::string::npos);
    CHECK(busy.received.find("\r\n\r\nok") != std::string::npos);
    CHECK(done == 0);  // the idle one is still there
    // The idle one: a stop closes it after its second (it sends nothing); a hand-over waits
    // for its request (or its keep-alive timeout).
    if (hand_over) idle.send("GET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(loop.runUntil([&] { return idle.poll() && done > 0; }, std::chrono::milliseconds(20000)));
    if (hand_over) {
      CHECK(idle.received.find("Connection: close") != std::string::npos);
    } else {
      CHECK(idle.received.empty());
    }
    CHECK(server.connectionCount() == 0);
  }
  CHECK(done == 1);
  CHECK(loop.close() == 0);
}
