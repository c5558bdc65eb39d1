#include "proxy/core/client_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace stickyproxy {

namespace {

bool trustedKey(const std::vector<Cidr>& trusted, const ClientKey& key) {
  sockaddr_storage storage{};
  if (key.family == 4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    std::memcpy(&v4->sin_addr, key.bytes, 4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    std::memcpy(&v6->sin6_addr, key.bytes, 16);
  }
  for (const Cidr& network : trusted) {
    if (network.contains(reinterpret_cast<const sockaddr*>(&storage))) return true;
  }
  return false;
}

// "10.0.0.7", "10.0.0.7:5012", "2001:db8::1" or "[2001:db8::1]:443".
std::optional<ClientKey> parseForwarded(std::string_view element) {
  if (auto key = ClientKey::parse(element)) return key;
  if (!element.empty() && element.front() == '[') {
    size_t close = element.find(']');
    if (close != std::string_view::npos) return ClientKey::parse(element.substr(1, close - 1));
    return std::nullopt;
  }
  size_t colon = element.find(':');
  if (colon != std::string_view::npos && element.find(':', colon + 1) == std::string_view::npos) {
    return ClientKey::parse(element.substr(0, colon));
  }
  return std::nullopt;
}

std::string keyText(const ClientKey& key) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(key.family == 4 ? AF_INET : AF_INET6, key.bytes, text, sizeof text);
  return text;
}

std::string_view lastListElement(std::string_view value) {
  size_t comma = value.rfind(',');
  return trimOws(comma == std::string_view::npos ? value : value.substr(comma + 1));
}

}  // namespace

bool peerIsTrusted(const std::vector<Cidr>& trusted, const Endpoint& peer) {
  if (peer.kind != Endpoint::Kind::kTcp) return false;
  for (const Cidr& network : trusted) {
    if (network.contains(peer.sockaddrPtr())) return true;
  }
  return false;
}

ClientAddress clientAddressOf(const std::vector<Cidr>& trusted, const Endpoint& peer, const HeaderList& headers) {
  ClientAddress client;
  if (peer.kind != Endpoint::Kind::kTcp) {
    client.text = "unix";
    return client;
  }
  client.key = ClientKey::fromSockaddr(peer.sockaddrPtr());
  client.text = peer.host();
  if (!peerIsTrusted(trusted, peer)) return client;
  // The elements right to left: the last field's last element first. Until an untrusted
  // address turns up, the request is the trusted proxies' own (a health check): no key.
  client.key = ClientKey{};
  const std::vector<Header>& fields = headers.fields();
  for (auto field = fields.rbegin(); field != fields.rend(); ++field) {
    if (!equalsIgnoreCase(field->name, "X-Forwarded-For")) continue;
    std::string_view list = field->value;
    while (true) {
      size_t comma = list.rfind(',');
      std::string_view element = trimOws(comma == std::string_view::npos ? list : list.substr(comma + 1));
      std::optional<ClientKey> key = parseForwarded(element);
      if (!key) return client;
      client.text = keyText(*key);
      if (!trustedKey(trusted, *key)) {
        client.key = *key;
        return client;
      }
      if (comma == std::string_view::npos) break;
      list = list.substr(0, comma);
    }
  }
  return client;
}

bool clientUsedHttps(const std::vector<Cidr>& trusted, const Endpoint& peer, bool tls, const HeaderList& headers) {
  if (tls) return true;
  if (!peerIsTrusted(trusted, peer)) return false;
  const std::string* proto = headers.find("X-Forwarded-Proto");
  return proto != nullptr && equalsIgnoreCase(lastListElement(*proto), "https");
}

}  // namespace stickyproxy
