// What the kernel knows of a TCP connection's progress.
#pragma once

#include <cstdint>
#include <optional>

namespace stickyproxy {

// Bytes of this socket's output the peer's TCP has acknowledged (they sit in, or have left,
// the peer's receive buffer); nullopt when `fd` is not a TCP socket.
std::optional<uint64_t> tcpBytesAcked(int fd);

}  // namespace stickyproxy
