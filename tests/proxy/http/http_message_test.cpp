#include "proxy/http/http_message.h"

#include <catch2/catch.hpp>

using namespace stickyproxy;

TEST_CASE("hop-by-hop fields and the fields Connection names are removed", "[http]") {
  HeaderList headers;
  headers.add("Host", "example.test");
  headers.add("Connection", "keep-alive, X-Private, Upgrade");
  headers.add("connection", "close");
  headers.add("Keep-Alive", "timeout=5");
  headers.add("Proxy-Connection", "keep-alive");
  headers.add("TE", "trailers");
  headers.add("Trailer", "Expires");
  headers.add("Transfer-Encoding", "chunked");
  headers.add("Upgrade", "websocket");
  headers.add("x-private", "secret");
  headers.add("Content-Length", "12");
  headers.add("Cookie", "a=1");
  removeHopByHopHeaders(headers);
  REQUIRE(headers.size() == 3);
  CHECK(*headers.find("host") == "example.test");
  CHECK(*headers.find("content-length") == "12");
  CHECK(*headers.find("cookie") == "a=1");
}

TEST_CASE("Connection cannot strip Host or Content-Length", "[http]") {
  HeaderList headers;
  headers.add("Host", "h");
  headers.add("Content-Length", "3");
  headers.add("Connection", "Host, Content-Length");
  removeHopByHopHeaders(headers);
  CHECK(headers.find("Host") != nullptr);
  CHECK(headers.find("Content-Length") != nullptr);
}

TEST_CASE("header lookup is case-insensitive and tokens are found in lists", "[http]") {
  HeaderList headers;
  headers.add("Accept-Encoding", "gzip, br");
  headers.add("Connection", " Close ");
  CHECK(headers.hasToken("connection", "close"));
  CHECK(headers.hasToken("ACCEPT-ENCODING", "br"));
  CHECK_FALSE(headers.hasToken("Accept-Encoding", "gz"));
  headers.set("accept-encoding", "identity");
  CHECK(headers.size() == 2);
  CHECK(*headers.find("Accept-Encoding") == "identity");
}

TEST_CASE("request and response heads serialise in wire order", "[http]") {
  RequestHead request;
  request.method = "POST";
  request.target = "/upload?x=1";
  request.headers.add("Host", "h");
  request.headers.add("Content-Length", "0");
  CHECK(serializeRequestHead(request) == "POST /upload?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  CHECK(request.path() == "/upload");

  ResponseHead response;
  response.status = 503;
  response.headers.add("Retry-After", "2");
  CHECK(serializeResponseHead(response) == "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n\r\n");
  response.reason = "Busy";
  CHECK(serializeResponseHead(response).starts_with("HTTP/1.1 503 Busy\r\n"));
}

TEST_CASE("idempotent methods follow RFC 9110", "[http]") {
  for (const char* method : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    RequestHead head;
    head.method = method;
    CHECK(head.isIdempotent());
  }
  for (const char* method : {"POST", "PATCH"}) {
    RequestHead head;
    head.method = method;
    CHECK_FALSE(head.isIdempotent());
  }
}
