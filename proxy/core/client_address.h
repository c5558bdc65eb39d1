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
  ClientKey key;     // invalid for a Unix socket peer
  std::string text;  // the IP literal, or "unix"
};

// True when `peer` is a TCP peer inside one of `trusted`.
bool peerIsTrusted(const std::vector<Cidr>& trusted, const Endpoint& peer);

// The peer, or for a trusted peer the rightmost X-Forwarded-For address (over every
// X-Forwarded-For field, in order) that is not itself trusted. Walking stops at an element that
// is not an IP address (optionally with a port): the nearest address seen so far is the client.
ClientAddress clientAddressOf(const std::vector<Cidr>& trusted, const Endpoint& peer, const HeaderList& headers);

// True when the client reached the proxy over HTTPS: its connection is TLS (`tls`), or a trusted
// peer says https in the last X-Forwarded-Proto element.
bool clientUsedHttps(const std::vector<Cidr>& trusted, const Endpoint& peer, bool tls, const HeaderList& headers);

}  // namespace stickyproxy
