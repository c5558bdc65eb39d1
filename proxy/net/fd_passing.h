// Blocking messages with file descriptors over a Unix stream socket (SCM_RIGHTS), for the short
// conversation between a running proxy and the successor that takes over its sockets.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace stickyproxy {

// The most descriptors one message carries.
constexpr size_t kMaxPassedFds = 64;

// Sends `payload` as one framed message ("<decimal length>\n" then the bytes) with `fds`
// attached to its first byte. Waits at most `timeout` for the socket to take it. The caller
// keeps its descriptors. Returns false with `*error` set on failure.
bool sendMessageWithFds(int socket, const std::string& payload, const std::vector<int>& fds,
                        std::chrono::milliseconds timeout, std::string* error);

// Receives one message sent by sendMessageWithFds: at most `max_payload` bytes and
// kMaxPassedFds descriptors (close-on-exec), within `timeout` in all. On failure every
// descriptor received is closed, and `*error` says why.
bool receiveMessageWithFds(int socket, size_t max_payload, std::chrono::milliseconds timeout,
                           std::string* payload, std::vector<int>* fds, std::string* error);

// Writes `line` (which should end in '\n') within `timeout`.
bool writeLine(int socket, const std::string& line, std::chrono::milliseconds timeout, std::string* error);
// Reads up to and without the next '\n', at most `max_length` bytes, within `timeout`; reads
// byte by byte, so nothing after the line is consumed.
bool readLine(int socket, size_t max_length, std::chrono::milliseconds timeout, std::string* line,
              std::string* error);

}  // namespace stickyproxy
