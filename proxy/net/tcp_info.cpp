// Apart from the rest of the net layer: <linux/tcp.h> has the full struct tcp_info, and it
// clashes with <netinet/tcp.h>, which libuv's headers include.
#include "proxy/net/tcp_info.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace stickyproxy {

std::optional<uint64_t> tcpBytesAcked(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return std::nullopt;
  if (length < offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked) return std::nullopt;
  return info.tcpi_bytes_acked;
}

}  // namespace stickyproxy
