#include "proxy/core/upstream_head.h"

#include <string>

namespace stickyproxy {

RequestHead upstreamHead(const RequestHead& request, const ForwardingContext& context) {
  RequestHead head;
  head.method = request.method;
  head.target = request.target;
  head.version_minor = 1;
  head.framing = request.framing;
  head.headers = request.headers;
  removeHopByHopHeaders(head.headers);
  head.headers.remove("Expect");
  head.headers.remove(kPreviousWorkerHeader);

  const std::string proto = context.secure ? "https" : "http";
  const std::string* host = request.headers.find("Host");
  if (context.peer_trusted) {
    const std::string* forwarded_for = head.headers.find("X-Forwarded-For");
    std::string chain = forwarded_for != nullptr ? *forwarded_for + ", " : std::string();
    head.headers.set("X-Forwarded-For", chain.append(context.peer_ip));
    if (head.headers.find("X-Forwarded-Proto") == nullptr) head.headers.set("X-Forwarded-Proto", proto);
    if (head.headers.find("X-Forwarded-Host") == nullptr && host != nullptr) {
      head.headers.set("X-Forwarded-Host", *host);
    }
  } else {
    head.headers.set("X-Forwarded-For", std::string(context.peer_ip));
    head.headers.set("X-Forwarded-Proto", proto);
    if (host != nullptr) {
      head.headers.set("X-Forwarded-Host", *host);
    } else {
      head.headers.remove("X-Forwarded-Host");
    }
  }
  if (!context.previous_worker.empty()) {
    head.headers.add(std::string(kPreviousWorkerHeader), std::string(context.previous_worker));
  }
  if (context.close_after) head.headers.add("Connection", "close");
  // HTTP/1.1 needs a Host: an HTTP/1.0 client may have sent none (or named it in Connection).
  if (head.headers.find("Host") == nullptr && !context.default_host.empty()) {
    head.headers.add("Host", std::string(context.default_host));
  }
  return head;
}

}  // namespace stickyproxy
