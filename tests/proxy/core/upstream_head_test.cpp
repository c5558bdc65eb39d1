#include "proxy/core/upstream_head.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "proxy/http/http_parser.h"

namespace stickyproxy {
namespace {

RequestHead clientRequest() {
  RequestHead request;
  request.method = "POST";
  request.target = "/upload?x=1";
  request.version_minor = 1;
  request.headers.add("Host", "app.example");
  request.headers.add("Connection", "keep-alive, X-Hop");
  request.headers.add("X-Hop", "1");
  request.headers.add("Keep-Alive", "timeout=5");
  request.headers.add("Expect", "100-continue");
  request.headers.add("X-Sticky-Previous-Worker", "w9");  // forged by the client
  request.headers.add("X-Forwarded-For", "198.51.100.1");
  request.headers.add("X-Forwarded-Proto", "https");
  request.headers.add("Content-Length", "5");
  request.framing.content_length = 5;
  return request;
}

// The head a worker reads from `wire`, parsed by the proxy's own request parser.
RequestHead parsed(const std::string& wire) {
  struct Catcher : HttpParser::Handler {
    std::optional<RequestHead> head;
    void onRequestHead(RequestHead&& seen) override { head = std::move(seen); }
    void onBody(const Bytes& /*data*/) override {}
    void onMessageComplete() override {}
  } catcher;
  HttpParser parser(HttpParser::Kind::kRequest, &catcher, ParserLimits{});
  parser.feed(Bytes::copyOf(wire));
  INFO(wire);
  REQUIRE(parser.error() == ParseError::kNone);
  REQUIRE(catcher.head);
  REQUIRE(catcher.head->verdict.compliant());
  return std::move(*catcher.head);
}

std::string written(const RequestHead& request, const ForwardingContext& context) {
  std::string wire;
  writeUpstreamHead(request, context, &wire);
  return wire;
}

TEST_CASE("writeUpstreamHead: an untrusted peer's forwarding fields are replaced, hop-by-hop ones dropped",
          "[upstream_head]") {
  ForwardingContext context;
  context.peer_ip = "192.0.2.7";
  std::string wire = written(clientRequest(), context);
  CHECK(wire ==
        "POST /upload?x=1 HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example\r\nContent-Length: 5\r\n\r\n");
  RequestHead head = parsed(wire);
  CHECK(head.method == "POST");
  CHECK(head.target == "/upload?x=1");
  CHECK(head.framing.content_length == std::optional<uint64_t>(5));
}

TEST_CASE("writeUpstreamHead: a trusted peer's chain is extended; the proxy's own fields are added",
          "[upstream_head]") {
  ForwardingContext context;
  context.peer_ip = "10.0.0.5";
  context.peer_trusted = true;
  context.secure = true;
  context.previous_worker = "w2";
  context.close_after = true;
  context.default_host = "w1";
  RequestHead head = parsed(written(clientRequest(), context));
  CHECK(*head.headers.find("X-Forwarded-For") == "198.51.100.1, 10.0.0.5");
  CHECK(*head.headers.find("X-Forwarded-Proto") == "https");  // the trusted peer's word stands
  CHECK(*head.headers.find("X-Sticky-Previous-Worker") == "w2");
  CHECK(*head.headers.find("Connection") == "close");
  CHECK(head.headers.remove("Host") == 1);  // the client's, not the default
  for (const char* gone : {"X-Hop", "Keep-Alive", "Expect"}) {
    CAPTURE(gone);
    CHECK(head.headers.find(gone) == nullptr);
  }

  RequestHead old = clientRequest();
  old.version_minor = 0;
  old.headers.remove("Host");
  RequestHead without_host = parsed(written(old, context));
  CHECK(*without_host.headers.find("Host") == "w1");
  CHECK(without_host.version_minor == 1);
  CHECK(without_host.headers.find("X-Forwarded-Host") == nullptr);
  // Naming Host or Content-Length in Connection does not strip them; naming a forwarding field does.
  RequestHead named = clientRequest();
  named.headers.set("Connection", "Host, Content-Length, X-Forwarded-Proto");
  RequestHead kept = parsed(written(named, context));
  CHECK(*kept.headers.find("Host") == "app.example");
  CHECK(*kept.headers.find("Content-Length") == "5");
  CHECK(*kept.headers.find("X-Forwarded-Proto") == "https");  // ours now: the connection is TLS
  CHECK(kept.headers.remove("X-Forwarded-Proto") == 1);
}

TEST_CASE("writeUpstreamHead: every X-Forwarded-For field of a trusted peer is kept in the chain", "[upstream_head]") {
  RequestHead request = clientRequest();
  request.headers.add("X-Forwarded-For", "203.0.113.9, 10.1.1.1");
  ForwardingContext context;
  context.peer_ip = "10.0.0.5";
  context.peer_trusted = true;
  RequestHead head = parsed(written(request, context));
  CHECK(head.headers.remove("X-Forwarded-For") == 1);
  CHECK(*parsed(written(request, context)).headers.find("X-Forwarded-For") ==
        "198.51.100.1, 203.0.113.9, 10.1.1.1, 10.0.0.5");
  // From an untrusted peer none of them reaches the worker.
  context.peer_trusted = false;
  CHECK(*parsed(written(request, context)).headers.find("X-Forwarded-For") == "10.0.0.5");
}

TEST_CASE("writeUpstreamHead: the framing fields come from the framing alone", "[upstream_head]") {
  ForwardingContext context;
  context.peer_ip = "192.0.2.7";
  RequestHead request = clientRequest();
  request.headers.add("Transfer-Encoding", "chunked");
  request.framing = BodyFraming{};
  request.framing.chunked = true;
  RequestHead chunked = parsed(written(request, context));
  CHECK(chunked.framing.chunked);
  CHECK(chunked.headers.find("Content-Length") == nullptr);
  CHECK(chunked.headers.remove("Transfer-Encoding") == 1);
  request.framing = BodyFraming{};
  RequestHead none = parsed(written(request, context));
  CHECK_FALSE(none.framing.hasBody());
  CHECK(none.headers.find("Content-Length") == nullptr);
  CHECK(none.headers.find("Transfer-Encoding") == nullptr);
}

TEST_CASE("withFramingFields makes Content-Length and Transfer-Encoding from the framing alone", "[upstream_head]") {
  RequestHead head = clientRequest();
  head.headers.add("Content-Length", "5");
  head.headers.add("Transfer-Encoding", "gzip");
  RequestHead framed = withFramingFields(head);
  CHECK(framed.headers.remove("Content-Length") == 1);
  CHECK(framed.headers.find("Transfer-Encoding") == nullptr);
  head.framing = BodyFraming{};
  head.framing.chunked = true;
  framed = withFramingFields(head);
  CHECK(framed.headers.find("Content-Length") == nullptr);
  CHECK(*framed.headers.find("Transfer-Encoding") == "chunked");
  head.framing = BodyFraming{};
  framed = withFramingFields(head);
  CHECK(framed.headers.find("Content-Length") == nullptr);
  CHECK(framed.headers.find("Transfer-Encoding") == nullptr);
  head.headers.remove("Content-Length");
  head.headers.remove("Transfer-Encoding");
  CHECK(serializeFramedRequestHead(head) == serializeRequestHead(head));
  head.framing.content_length = 0;
  CHECK(serializeFramedRequestHead(head) == serializeRequestHead(withFramingFields(head)));
  CHECK(serializeFramedRequestHead(head).find("\r\nContent-Length: 0\r\n") != std::string::npos);
  CHECK(chunkSizeLine(500) == "1f4\r\n");
  CHECK(chunkSizeLine(0) == "0\r\n");
}

}  // namespace
}  // namespace stickyproxy
