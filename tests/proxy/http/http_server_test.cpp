// The server and client halves of the HTTP stack against each other, in one loop.
#include "proxy/http/http_server.h"

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

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
