#include "proxy/http/http_message.h"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <utility>

using namespace stickyproxy;

namespace {

// A header list with `fields` added in order.
HeaderList headersOf(std::initializer_list<std::pair<const char*, const char*>> fields) {
  HeaderList headers;
  for (const auto& [name, value] : fields) headers.add(name, value);
  return headers;
}

}  // namespace

TEST_CASE("hop-by-hop fields and the fields Connection names are removed", "[http]") {
  HeaderList headers = headersOf({{"Host", "example.test"},
                                  {"Connection", "keep-alive, X-Private, Upgrade"}, {"connection", "close"},
                                  {"Keep-Alive", "timeout=5"}, {"Proxy-Connection", "keep-alive"},
                                  {"TE", "trailers"}, {"Trailer", "Expires"}, {"Transfer-Encoding", "chunked"},
                                  {"Upgrade", "websocket"}, {"x-private", "secret"},
                                  {"Content-Length", "12"}, {"Cookie", "a=1"}});
  removeHopByHopHeaders(headers);
  REQUIRE(headers.size() == 3);
  CHECK(*headers.find("host") == "example.test");
  CHECK(*headers.find("content-length") == "12");
  CHECK(*headers.find("cookie") == "a=1");
}

TEST_CASE("Connection cannot strip Host or Content-Length", "[http]") {
  HeaderList headers = headersOf({{"Host", "h"}, {"Content-Length", "3"}, {"Connection", "Host, Content-Length"}});
  removeHopByHopHeaders(headers);
  CHECK(headers.find("Host") != nullptr);
  CHECK(headers.find("Content-Length") != nullptr);
}

TEST_CASE("header lookup is case-insensitive and tokens are found in lists", "[http]") {
  HeaderList headers = headersOf({{"Accept-Encoding", "gzip, br"}, {"Connection", " Close "}});
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

TEST_CASE("a response head appended to a buffer reads as the serialised one", "[http]") {
  ResponseHead response;
  response.status = 404;
  response.headers.add("Content-Type", "text/plain");
  std::string out = "kept:";
  appendResponseHead(response, &out);
  CHECK(out == "kept:" + serializeResponseHead(response));
  CHECK(serializeResponseHead(response) == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
}

TEST_CASE("idempotent methods follow RFC 9110", "[http]") {
  const std::pair<const char*, bool> methods[] = {
      {"GET", true}, {"HEAD", true}, {"OPTIONS", true}, {"TRACE", true},
      {"PUT", true}, {"DELETE", true}, {"POST", false}, {"PATCH", false}};
  for (const auto& [method, idempotent] : methods) {
    RequestHead head;
    head.method = method;
    INFO(method);
    CHECK(head.isIdempotent() == idempotent);
  }
}
