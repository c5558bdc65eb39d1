#include "proxy/core/upstream_head.h"

#include <catch2/catch.hpp>

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

TEST_CASE("upstreamHead: an untrusted peer's forwarding fields are replaced, hop-by-hop ones dropped",
          "[upstream_head]") {
  ForwardingContext context;
  context.peer_ip = "192.0.2.7";
  RequestHead head = upstreamHead(clientRequest(), context);
  CHECK(head.method == "POST");
  CHECK(head.target == "/upload?x=1");
  CHECK(head.version_minor == 1);
  for (const char* gone : {"Connection", "X-Hop", "Keep-Alive", "Expect", "X-Sticky-Previous-Worker"}) {
    CAPTURE(gone);
    CHECK(head.headers.find(gone) == nullptr);
  }
  CHECK(*head.headers.find("X-Forwarded-For") == "192.0.2.7");
  CHECK(*head.headers.find("X-Forwarded-Proto") == "http");
  CHECK(*head.headers.find("X-Forwarded-Host") == "app.example");
  CHECK(*head.headers.find("Content-Length") == "5");  // end-to-end
  CHECK(head.framing.content_length == std::optional<uint64_t>(5));
}

TEST_CASE("upstreamHead: a trusted peer's chain is extended; the proxy's own fields are added", "[upstream_head]") {
  ForwardingContext context;
  context.peer_ip = "10.0.0.5";
  context.peer_trusted = true;
  context.secure = true;
  context.previous_worker = "w2";
  context.close_after = true;
  context.default_host = "w1";
  RequestHead head = upstreamHead(clientRequest(), context);
  CHECK(*head.headers.find("X-Forwarded-For") == "198.51.100.1, 10.0.0.5");
  CHECK(*head.headers.find("X-Forwarded-Proto") == "https");  // the trusted peer's word stands
  CHECK(*head.headers.find("X-Sticky-Previous-Worker") == "w2");
  CHECK(*head.headers.find("Connection") == "close");
  CHECK(head.headers.remove("Host") == 1);  // the client's, not the default

  RequestHead old = clientRequest();
  old.version_minor = 0;
  old.headers.remove("Host");
  RequestHead without_host = upstreamHead(old, context);
  CHECK(*without_host.headers.find("Host") == "w1");
  CHECK(without_host.version_minor == 1);
  // Naming Host or Content-Length in Connection does not strip them.
  RequestHead named = clientRequest();
  named.headers.set("Connection", "Host, Content-Length");
  RequestHead kept = upstreamHead(named, context);
  CHECK(*kept.headers.find("Host") == "app.example");
  CHECK(*kept.headers.find("Content-Length") == "5");
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
