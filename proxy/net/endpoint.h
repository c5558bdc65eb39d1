// A socket address the net layer can listen on or connect to: TCP (IPv4/IPv6) or a Unix socket.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stickyproxy {

struct Endpoint {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  sockaddr_storage tcp{};  // kTcp: sockaddr_in or sockaddr_in6
  std::string path;        // kUnix

  // Parses "unix:/path", "1.2.3.4:80", "[::1]:80", "localhost:80". IP literals only: no DNS.
  static std::optional<Endpoint> parse(std::string_view text);
  static Endpoint fromSockaddr(const sockaddr* address);
  static Endpoint unixPath(std::string path);

  const sockaddr* sockaddrPtr() const { return reinterpret_cast<const sockaddr*>(&tcp); }
  uint16_t port() const;
  // The IP literal without port ("::1", "10.0.0.7"); empty for Unix sockets.
  std::string host() const;
  // "unix:/path", "1.2.3.4:80" or "[::1]:80" — parse(toString()) round-trips.
  std::string toString() const;
  // The same socket address: kind, family, address and port (and scope), or path.
  bool operator==(const Endpoint& other) const;
};

}  // namespace stickyproxy
