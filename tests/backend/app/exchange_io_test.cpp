// The app's answers through a real HttpServer and client on one loop: gzip when, and only when,
// the request accepts it, for whole answers (AppContext::send) and streamed files (sendFile).
#include "backend/app/exchange_io.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "proxy/http/http_client.h"
#include "tests/proxy/http/gzip_test_support.h"
#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

using namespace stickyproxy;
using stickyproxy::testing::gunzip;
using namespace stickyproxy::backend;

namespace {

struct Received : ClientExchangeHandler {
  int status = 0;
  bool complete = false;
  bool failed = false;
  std::string body;
  HeaderList headers;
  void onResponseHead(ResponseHead&& head) override {
    status = head.status;
    headers = std::move(head.headers);
  }
  void onResponseBody(const Bytes& data) override { body.append(data.data, data.size); }
  void onResponseComplete() override { complete = true; }
  void onFailure(ClientFailure, int) override { failed = true; }
};

std::string mapLikeHtml(size_t bytes) {
  std::string html = "<!DOCTYPE html><svg>";
  for (size_t i = 0; html.size() < bytes; ++i) html += "<use href=\"#w" + std::to_string(i % 977) + "\" fill=\"#fd8d3c\"/>\n";
  return html;
}

}  // namespace

TEST_CASE("answers go gzip-encoded only to requests that accept gzip, whole or streamed", "[app]") {
  testing::TestLoop loop;
  testing::TempDir dir;
  const std::string page = mapLikeHtml(300000);
  testing::writeFile(dir.file("map.html"), page);
  const std::string json = "{\"wards\":\"" + std::string(5000, 'x') + "\"}";
  {
    BackendOptions options;
    options.state_dir = dir.path();
    AppContext app(loop.get(), options);
    HttpServer server(loop.get(), ServerOptions{}, [&](const ServerExchangePtr& exchange) {
      const std::string_view path = exchange->request().path();
      if (path == "/map") return sendFile(app, exchange, dir.file("map.html"), "text/html; charset=utf-8", "", "gone");
      if (path == "/small") return app.send(exchange, 200, "application/json", "{\"ok\":true}", app.baseHeaders());
      if (path == "/zip") return app.send(exchange, 200, "application/zip", std::string(4096, 'z'), app.baseHeaders());
      app.send(exchange, 200, "application/json", json, app.baseHeaders());
    });
    REQUIRE(server.listen(*Endpoint::parse("127.0.0.1:0")) == 0);
    ClientConnectionPtr connection = ClientConnection::create(loop.get(), server.boundEndpoint());
    int connected = 1;
    connection->connect(std::chrono::seconds(2), [&](int status) { connected = status; });
    REQUIRE(loop.runUntil([&] { return connected != 1; }));
    REQUIRE(connected == 0);

    auto fetch = [&](const std::string& target, const char* accept_encoding, const std::string& if_none_match = {},
                     int expected = 200) {
      RequestHead head;
      head.method = "GET";
      head.target = target;
      head.headers.add("Host", "test");
      if (accept_encoding != nullptr) head.headers.add("Accept-Encoding", accept_encoding);
      if (!if_none_match.empty()) head.headers.add("If-None-Match", if_none_match);
      Received received;
      connection->startRequest(head, &received, std::chrono::seconds(5));
      REQUIRE(loop.runUntil([&] { return received.complete || received.failed; }));
      REQUIRE(received.complete);
      REQUIRE(received.status == expected);
      return received;
    };
    auto encoding = [](const Received& received) {
      const std::string* value = received.headers.find("Content-Encoding");
      return value == nullptr ? std::string() : *value;
    };
    auto vary = [](const Received& received) {
      const std::string* value = received.headers.find("Vary");
      return value == nullptr ? std::string() : *value;
    };

    Received streamed = fetch("/map", "gzip, deflate, br");
    CHECK(encoding(streamed) == "gzip");
    CHECK(vary(streamed) == "Accept-Encoding");
    CHECK(streamed.headers.find("Content-Length") == nullptr);  // chunked: the length is known at the end
    CHECK(streamed.body.size() < page.size() / 4);
    CHECK(gunzip(streamed.body) == page);

    Received plain_map = fetch("/map", "gzip;q=0, identity");
    CHECK(encoding(plain_map).empty());
    CHECK(vary(plain_map) == "Accept-Encoding");
    CHECK(plain_map.body == page);
    CHECK(fetch("/map", nullptr).body == page);

    Received whole = fetch("/json", "br;q=1, gzip;q=0.5");
    CHECK(encoding(whole) == "gzip");
    CHECK(gunzip(whole.body) == json);
    CHECK(fetch("/json", "deflate").body == json);

    Received small = fetch("/small", "gzip");  // under kMinGzipBytes: not worth it
    CHECK(encoding(small).empty());
    CHECK(small.body == "{\"ok\":true}");
    Received zip = fetch("/zip", "gzip");  // already compressed types are sent as they are
    CHECK(encoding(zip).empty());
    CHECK(vary(zip).empty());
    CHECK(zip.body == std::string(4096, 'z'));
    // A file the browser has is not sent again: its ETag (per encoding) answers 304 until it changes.
    const std::string* gz_tag = streamed.headers.find("ETag");
    const std::string* plain_tag = plain_map.headers.find("ETag");
    REQUIRE(gz_tag != nullptr);
    REQUIRE(plain_tag != nullptr);
    CHECK(*gz_tag != *plain_tag);
    CHECK(*streamed.headers.find("Cache-Control") == "private, no-cache");
    Received unchanged = fetch("/map", "gzip", "\"other\", " + *gz_tag, 304);
    CHECK(unchanged.body.empty());
    CHECK(*unchanged.headers.find("ETag") == *gz_tag);
    CHECK(fetch("/map", "gzip", "W/" + *gz_tag, 304).body.empty());
    CHECK(fetch("/map", nullptr, *gz_tag).body == page);  // the other encoding's tag does not match
    testing::writeFile(dir.file("map.html.new"), page + "<!-- redrawn -->");
    std::filesystem::rename(dir.file("map.html.new"), dir.file("map.html"));
    Received redrawn = fetch("/map", "gzip", *gz_tag);
    CHECK(gunzip(redrawn.body) == page + "<!-- redrawn -->");
    CHECK(*redrawn.headers.find("ETag") != *gz_tag);
    connection->close();
  }
  CHECK(loop.close() == 0);
}
