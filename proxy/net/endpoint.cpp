#include "proxy/net/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace stickyproxy {

namespace {

std::optional<uint16_t> parsePort(std::string_view text) {
  unsigned value = 0;
  if (text.empty() || text.size() > 5) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) return std::nullopt;
    return unixPath(std::string(path));
  }
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto port = parsePort(port_text);
  if (!port) return std::nullopt;
  if (host == "localhost") host = "127.0.0.1";
  std::string host_string(host);
  Endpoint endpoint;
  endpoint.kind = Kind::kTcp;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&endpoint.tcp);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&endpoint.tcp);
  if (inet_pton(AF_INET, host_string.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(*port);
  } else if (inet_pton(AF_INET6, host_string.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(*port);
  } else {
    return std::nullopt;
  }
  return endpoint;
}

Endpoint Endpoint::fromSockaddr(const sockaddr* address) {
  Endpoint endpoint;
  if (address->sa_family == AF_INET) {
    std::memcpy(&endpoint.tcp, address, sizeof(sockaddr_in));
  } else if (address->sa_family == AF_INET6) {
    std::memcpy(&endpoint.tcp, address, sizeof(sockaddr_in6));
  }
  return endpoint;
}

Endpoint Endpoint::unixPath(std::string path) {
  Endpoint endpoint;
  endpoint.kind = Kind::kUnix;
  endpoint.path = std::move(path);
  return endpoint;
}

uint16_t Endpoint::port() const {
  if (kind != Kind::kTcp) return 0;
  if (tcp.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&tcp)->sin_port);
  if (tcp.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&tcp)->sin6_port);
  return 0;
}

std::string Endpoint::host() const {
  if (kind != Kind::kTcp) return {};
  char text[INET6_ADDRSTRLEN] = {};
  if (tcp.ss_family == AF_INET) {
    // Dotted quad by hand: inet_ntop formats with sprintf, and this runs for every request.
    const auto* octets = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(&tcp)->sin_addr);
    char* out = text;
    for (int i = 0; i < 4; ++i) {
      unsigned value = octets[i];
      if (value >= 100) *out++ = static_cast<char>('0' + value / 100);
      if (value >= 10) *out++ = static_cast<char>('0' + value / 10 % 10);
      *out++ = static_cast<char>('0' + value % 10);
      if (i < 3) *out++ = '.';
    }
    return std::string(text, static_cast<size_t>(out - text));
  } else if (tcp.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&tcp)->sin6_addr, text, sizeof text);
  }
  return text;
}

std::string Endpoint::toString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (tcp.ss_family == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return host() + ":" + std::to_string(port());
}

bool Endpoint::operator==(const Endpoint& other) const {
  if (kind != other.kind) return false;
  if (kind == Kind::kUnix) return path == other.path;
  if (tcp.ss_family != other.tcp.ss_family) return false;
  if (tcp.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(tcp);
    const auto& b = reinterpret_cast<const sockaddr_in&>(other.tcp);
    return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
  }
  if (tcp.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(tcp);
    const auto& b = reinterpret_cast<const sockaddr_in6&>(other.tcp);
    return a.sin6_port == b.sin6_port && a.sin6_scope_id == b.sin6_scope_id &&
           std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0;
  }
  return true;  // both unset
}

}  // namespace stickyproxy
