// The load generator's browser against the project's HTTP server, in one loop.
#include "load/user_agent.h"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

#include "proxy/http/gzip_encoder.h"
#include "proxy/http/http_server.h"
#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;
using namespace stickyproxy::load;

namespace {

struct Served {
  std::string method;
  std::string cookie;
  std::string accept_encoding;
  size_t body = 0;
};

// A server that records each request and answers by path: /set sets cookies, /gzip and /broken
// answer gzip (the second not valid), anything else echoes the body size.
struct EchoServer {
  explicit EchoServer(uv_loop_t* loop, ServerOptions options = {})
      : server(loop, options, [this](const ServerExchangePtr& exchange) { onRequest(exchange); }) {
    REQUIRE(server.listen(*Endpoint::parse("127.0.0.1:0")) == 0);
  }

  struct Exchange : ExchangeHandler {
    Exchange(EchoServer* owner, ServerExchangePtr exchange) : owner_(owner), exchange_(std::move(exchange)) {}
    void onRequestBody(const Bytes& data) override { size_ += data.size; }
    void onRequestComplete() override { owner_->answer(exchange_, size_); }
    EchoServer* owner_;
    ServerExchangePtr exchange_;
    size_t size_ = 0;
  };

  void onRequest(const ServerExchangePtr& exchange) {
    exchange->setHandler(std::make_unique<Exchange>(this, exchange));
  }

  void answer(const ServerExchangePtr& exchange, size_t size) {
    const RequestHead& request = exchange->request();
    Served served{request.method, "", "", size};
    if (const std::string* cookie = request.headers.find("Cookie")) served.cookie = *cookie;
    if (const std::string* encoding = request.headers.find("Accept-Encoding")) served.accept_encoding = *encoding;
    seen.push_back(served);
    HeaderList extra;
    std::string path(request.path());
    if (path == "/set") {
      extra.add("Set-Cookie", "a=1; Path=/");
      extra.add("Set-Cookie", "b=2; HttpOnly");
      exchange->respond(200, "text/plain", "set", std::move(extra));
    } else if (path == "/gzip" || path == "/broken") {
      extra.add("Content-Encoding", "gzip");
      std::string body = GzipEncoder::compress(std::string(5000, 'x') + "end");
      if (path == "/broken") body.resize(body.size() / 2);
      exchange->respond(200, "text/plain", body, std::move(extra));
    } else {
      exchange->respond(200, "text/plain", std::to_string(size));
    }
  }

  HttpServer server;
  std::vector<Served> seen;
};

UserAgent::Settings settingsFor(const Endpoint& endpoint) {
  UserAgent::Settings settings;
  settings.target = endpoint;
  settings.host_header = endpoint.toString();
  settings.response_timeout = std::chrono::seconds(5);
  return settings;
}

// Sends `request` and runs the loop until its answer.
AgentResponse exchange(testing::TestLoop& loop, UserAgent& agent, AgentRequest request) {
  std::optional<AgentResponse> answer;
  agent.send(std::move(request), [&](AgentResponse&& response) { answer = std::move(response); });
  REQUIRE(loop.runUntil([&] { return answer.has_value(); }));
  return std::move(*answer);
}

AgentRequest get(std::string target) {
  AgentRequest request;
  request.target = std::move(target);
  return request;
}

}  // namespace

TEST_CASE("the agent keeps its cookies, sends bodies in pieces and reuses its connection", "[load]") {
  testing::TestLoop loop;
  {
    EchoServer server(loop.get());
    UserAgent agent(loop.get(), settingsFor(server.server.boundEndpoint()));
    AgentResponse first = exchange(loop, agent, get("/set"));
    CHECK(first.failure.empty());
    CHECK(first.status == 200);
    CHECK(agent.cookies().header() == "a=1; b=2");

    AgentRequest post;
    post.method = "POST";
    post.target = "/upload";
    post.body = {Bytes::copyOf("abc"), Bytes::copyOf(std::string(100000, 'd')), Bytes::copyOf("ef")};
    AgentResponse second = exchange(loop, agent, std::move(post));
    CHECK(second.body == "100005");
    REQUIRE(server.seen.size() == 2);
    CHECK(server.seen[1].method == "POST");
    CHECK(server.seen[1].cookie == "a=1; b=2");
    CHECK(server.seen[1].accept_encoding == "gzip");
    CHECK(agent.connectionsOpened() == 1);
    CHECK(second.total >= second.first_byte);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a gzip answer is inflated; one that does not inflate is a failure", "[load]") {
  testing::TestLoop loop;
  {
    EchoServer server(loop.get());
    UserAgent agent(loop.get(), settingsFor(server.server.boundEndpoint()));
    AgentResponse good = exchange(loop, agent, get("/gzip"));
    CHECK(good.failure.empty());
    CHECK(good.body == std::string(5000, 'x') + "end");
    CHECK(good.wire_bytes < good.body.size());
    AgentResponse bad = exchange(loop, agent, get("/broken"));
    CHECK(bad.failure == "the gzip body does not inflate");
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a connection the server closed while idle is replaced by a new one", "[load]") {
  testing::TestLoop loop;
  {
    ServerOptions options;
    options.keepalive_timeout = std::chrono::milliseconds(50);
    EchoServer server(loop.get(), options);
    UserAgent agent(loop.get(), settingsFor(server.server.boundEndpoint()));
    CHECK(exchange(loop, agent, get("/one")).failure.empty());
    REQUIRE(loop.runUntil([&] { return server.server.connectionCount() == 0; }));
    AgentResponse again = exchange(loop, agent, get("/two"));
    CHECK(again.failure.empty());
    CHECK(again.status == 200);
    CHECK(agent.connectionsOpened() == 2);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("no server: the failure says so and nothing is left open", "[load]") {
  testing::TestLoop loop;
  Endpoint nobody;
  {
    // A port that was just free: bind, note it, close.
    EchoServer server(loop.get());
    nobody = server.server.boundEndpoint();
  }
  {
    UserAgent agent(loop.get(), settingsFor(nobody));
    AgentResponse response = exchange(loop, agent, get("/"));
    CHECK(response.failure.find("connect") != std::string::npos);
    CHECK(response.status == 0);
  }
  CHECK(loop.close() == 0);
}
