// The head the proxy sends a worker for a client's request.
#pragma once

#include <string_view>

#include "proxy/http/http_message.h"

namespace stickyproxy {

// Only the proxy may write this field: it names the worker a moved session was on, so that the
// app adopts the session's files.
inline constexpr std::string_view kPreviousWorkerHeader = "X-Sticky-Previous-Worker";

// What the proxy knows of a request beyond its head.
struct ForwardingContext {
  std::string_view peer_ip;  // the client connection's peer ("unix" for a Unix socket)
  bool peer_trusted = false;  // the peer is one of trusted_proxies: its X-Forwarded-* stand
  bool secure = false;        // the client connection is TLS
  std::string_view previous_worker;  // for kPreviousWorkerHeader; empty: none
  bool close_after = false;   // the worker connection ends after this exchange (Connection: close)
  std::string_view default_host;  // the Host of a request that had none (HTTP/1.0)
};

// `request` as HTTP/1.1 to a worker: hop-by-hop fields, Expect (the proxy answers
// 100-continue itself) and any client-sent kPreviousWorkerHeader removed; X-Forwarded-For,
// -Proto and -Host set (extended, for a trusted peer); the framing stays in `framing` for
// serializeFramedRequestHead().
RequestHead upstreamHead(const RequestHead& request, const ForwardingContext& context);

}  // namespace stickyproxy
