// The head the proxy sends a worker for a client's request.
#pragma once

#include <string>
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

// Appends to `out`, in one pass over `request`'s fields, the head to send a worker: the request
// line as HTTP/1.1; the client's fields in order but for the hop-by-hop ones (RFC 9110 section
// 7.6.1: Connection and what it names, except Content-Length and Host), Expect (the proxy
// answers 100-continue itself), any kPreviousWorkerHeader and the framing fields; then
// X-Forwarded-For (the client's chain, every field joined, extended for a trusted peer, else the
// peer alone), X-Forwarded-Proto and -Host (a trusted peer's stay where they were), the previous
// worker, `Connection: close`, a default Host, and the framing made from `request.framing`.
void writeUpstreamHead(const RequestHead& request, const ForwardingContext& context, std::string* out);

}  // namespace stickyproxy
