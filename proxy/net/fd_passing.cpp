#include "proxy/net/fd_passing.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace stickyproxy {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on `socket` until `deadline`; false with `*error` on timeout or failure.
bool waitFor(int socket, short events, Clock::time_point deadline, std::string* error) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      *error = "timed out";
      return false;
    }
    pollfd waiting{socket, events, 0};
    int ready = ::poll(&waiting, 1, static_cast<int>(left));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) {
      *error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
  }
}

bool writeAll(int socket, const char* data, size_t size, Clock::time_point deadline, std::string* error) {
  while (size > 0) {
    ssize_t n = ::send(socket, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!waitFor(socket, POLLOUT, deadline, error)) return false;
      continue;
    }
    *error = std::string("send: ") + std::strerror(errno);
    return false;
  }
  return true;
}

// Reads one byte, keeping any descriptors that come with it.
bool readByte(int socket, Clock::time_point deadline, char* byte, std::vector<int>* fds, std::string* error) {
  for (;;) {
    iovec vector{byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    msghdr message{};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    if (fds != nullptr) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
    }
    ssize_t n = ::recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n > 0) {
      for (cmsghdr* header = CMSG_FIRSTHDR(&message); fds != nullptr && header != nullptr;
           header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
          fds->push_back(fd);
        }
      }
      if (fds != nullptr && (message.msg_flags & MSG_CTRUNC) != 0) {
        *error = "too many descriptors";
        return false;
      }
      return true;
    }
    if (n == 0) {
      *error = "connection closed";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!waitFor(socket, POLLIN, deadline, error)) return false;
      continue;
    }
    *error = std::string("recvmsg: ") + std::strerror(errno);
    return false;
  }
}

bool readLineUntil(int socket, size_t max_length, Clock::time_point deadline, std::string* line,
                   std::vector<int>* fds, std::string* error) {
  line->clear();
  for (;;) {
    char byte;
    if (!readByte(socket, deadline, &byte, fds, error)) return false;
    if (byte == '\n') return true;
    if (line->size() >= max_length) {
      *error = "line too long";
      return false;
    }
    line->push_back(byte);
  }
}

void closeAll(std::vector<int>* fds) {
  for (int fd : *fds) ::close(fd);
  fds->clear();
}

}  // namespace

bool sendMessageWithFds(int socket, const std::string& payload, const std::vector<int>& fds,
                        std::chrono::milliseconds timeout, std::string* error) {
  if (fds.size() > kMaxPassedFds) {
    *error = "too many descriptors";
    return false;
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string frame = std::to_string(payload.size()) + "\n" + payload;
  // The descriptors ride on the first byte; the rest follows as plain bytes.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)]{};
  iovec vector{frame.data(), 1};
  msghdr message{};
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  if (!fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr) {
      *error = "no room for descriptors";
      return false;
    }
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!waitFor(socket, POLLOUT, deadline, error)) return false;
      continue;
    }
    *error = std::string("sendmsg: ") + std::strerror(errno);
    return false;
  }
  return writeAll(socket, frame.data() + 1, frame.size() - 1, deadline, error);
}

bool receiveMessageWithFds(int socket, size_t max_payload, std::chrono::milliseconds timeout,
                           std::string* payload, std::vector<int>* fds, std::string* error) {
  const Clock::time_point deadline = Clock::now() + timeout;
  fds->clear();
  std::string length_text;
  // Long enough to carry a refusal ("error: ...") instead of a length.
  if (!readLineUntil(socket, 512, deadline, &length_text, fds, error)) {
    closeAll(fds);
    return false;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long length = std::strtoull(length_text.c_str(), &end, 10);
  if (length_text.empty() || *end != '\0' || errno != 0 || length > max_payload) {
    *error = "no message but \"" + length_text + "\"";
    closeAll(fds);
    return false;
  }
  payload->assign(static_cast<size_t>(length), '\0');
  size_t got = 0;
  while (got < payload->size()) {
    ssize_t n = ::recv(socket, payload->data() + got, payload->size() - got, MSG_DONTWAIT);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      *error = "connection closed";
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (waitFor(socket, POLLIN, deadline, error)) continue;
    } else {
      *error = std::string("recv: ") + std::strerror(errno);
    }
    closeAll(fds);
    return false;
  }
  return true;
}

bool writeLine(int socket, const std::string& line, std::chrono::milliseconds timeout, std::string* error) {
  return writeAll(socket, line.data(), line.size(), Clock::now() + timeout, error);
}

bool readLine(int socket, size_t max_length, std::chrono::milliseconds timeout, std::string* line,
              std::string* error) {
  return readLineUntil(socket, max_length, Clock::now() + timeout, line, nullptr, error);
}

}  // namespace stickyproxy
