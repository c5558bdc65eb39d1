// The server and client halves of the HTTP stack against each other, in one loop.
#include "proxy/http/http_server.h"

#include <catch2/catch.hpp>

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
