// Who sent a request: the connection's peer or, when the peer is one of trusted_proxies (the
// ALB), the client that peer names in X-Forwarded-For.
#pragma once

#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/core/client_limiter.h"
#include "proxy/http/http_message.h"
#include "proxy/net/endpoint.h"

namespace stickyproxy {

struct ClientAddress {
  ClientKey key;     // what per-client limits count; invalid (not limited) for a Unix socket peer
                     // and for a request of the trusted proxies' own
  std::string text;  // the IP literal for the log, or "unix"
};

// True when `peer` is a TCP peer inside one of `trusted`.
bool peerIsTrusted(const std::vector<Cidr>& trusted, const Endpoint& peer);

// The peer, or for a trusted peer the rightmost X-Forwarded-For address (over every
// X-Forwarded-For field, in order) that is not itself trusted. When the walk ends (no field, only
// trusted addresses, or an element that is not an IP address, optionally with a port) before an
// untrusted address, the key is invalid and the text names the nearest address seen.
ClientAddress clientAddressOf(const std::vector<Cidr>& trusted, const Endpoint& peer, const HeaderList& headers);

// True when the client reached the proxy over HTTPS: its connection is TLS (`tls`), or a trusted
// peer says https in the last X-Forwarded-Proto element.
bool clientUsedHttps(const std::vector<Cidr>& trusted, const Endpoint& peer, bool tls, const HeaderList& headers);

}  // namespace stickyproxy
