#include "proxy/net/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace stickyproxy {

Listener::Listener(uv_loop_t* loop) : loop_(loop) {}

Listener::~Listener() { close(); }

void Listener::makeHandle(const Endpoint& endpoint, AcceptCallback on_accept) {
  close();
  endpoint_ = endpoint;
  on_accept_ = std::move(on_accept);
  handle_ = new Handle;
  if (endpoint.kind == Endpoint::Kind::kTcp) {
    uv_tcp_init(loop_, &handle_->tcp);
  } else {
    uv_pipe_init(loop_, &handle_->pipe, 0);
  }
  handle_->tcp.data = this;
}

int Listener::bind(const Endpoint& endpoint, AcceptCallback on_accept, int unix_mode) {
  makeHandle(endpoint, std::move(on_accept));
  int status = endpoint.kind == Endpoint::Kind::kTcp ? bindTcp(endpoint) : bindUnix(endpoint, unix_mode);
  if (status != 0) close();
  return status;
}

// uv_tcp_bind() keeps an EADDRINUSE for uv_listen() to report: bind the socket here, so that
// every bind error shows before anything else starts.
int Listener::bindTcp(const Endpoint& endpoint) {
  const sockaddr* address = endpoint.sockaddrPtr();
  int fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  int on = 1;
  int off = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // as libuv does
  if (address->sa_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  socklen_t length = address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, address, length) != 0) {
    int error = -errno;
    ::close(fd);
    return error;
  }
  int status = uv_tcp_open(&handle_->tcp, fd);
  if (status != 0) ::close(fd);
  return status;
}

// Bound here rather than by uv_pipe_bind(), which would unlink the file when the handle
// closes: release() must leave it to a successor.
int Listener::bindUnix(const Endpoint& endpoint, int unix_mode) {
  sockaddr_un address{};
  if (endpoint.path.size() >= sizeof(address.sun_path)) return UV_ENAMETOOLONG;
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, endpoint.path.c_str(), endpoint.path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  ::unlink(endpoint.path.c_str());
  // Tighten the umask around bind so the socket never exists with looser permissions.
  mode_t old_mask = unix_mode != 0 ? ::umask(0777 & ~static_cast<mode_t>(unix_mode)) : 0;
  int status = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 ? 0 : -errno;
  if (unix_mode != 0) {
    ::umask(old_mask);
    if (status == 0) ::chmod(endpoint.path.c_str(), static_cast<mode_t>(unix_mode));
  }
  if (status == 0) status = uv_pipe_open(&handle_->pipe, fd);
  if (status != 0) ::close(fd);
  return status;
}

int Listener::startAccepting(int backlog) {
  if (handle_ == nullptr) return UV_EINVAL;
  if (accepting_) return 0;
  int status = uv_listen(reinterpret_cast<uv_stream_t*>(handle_), backlog, &Listener::onConnection);
  if (status == 0) accepting_ = true;
  return status;
}

int Listener::listen(const Endpoint& endpoint, AcceptCallback on_accept, int unix_mode, int backlog) {
  int status = bind(endpoint, std::move(on_accept), unix_mode);
  if (status == 0) status = startAccepting(backlog);
  if (status != 0) close();
  return status;
}

Endpoint Listener::boundEndpoint() const {
  if (handle_ == nullptr || endpoint_.kind == Endpoint::Kind::kUnix) return endpoint_;
  sockaddr_storage address{};
  int length = sizeof address;
  uv_tcp_getsockname(&handle_->tcp, reinterpret_cast<sockaddr*>(&address), &length);
  return Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&address));
}

void Listener::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0 || self == nullptr) return;
  StreamPtr stream = Stream::create(self->loop_, self->endpoint_.kind);
  if (stream->acceptFrom(server) != 0) {
    stream->close();
    return;
  }
  self->on_accept_(std::move(stream));
}

void Listener::pause() {
  if (handle_ == nullptr || paused_) return;
  paused_ = true;
  // libuv has no "stop listening"; stopping reads on a listening stream stops accepting.
  uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_));
}

void Listener::resume() {
  if (handle_ == nullptr || !paused_) return;
  paused_ = false;
  uv_listen(reinterpret_cast<uv_stream_t*>(handle_), 1024, &Listener::onConnection);
}

int Listener::adopt(int fd, const Endpoint& endpoint, AcceptCallback on_accept) {
  makeHandle(endpoint, std::move(on_accept));
  int status = endpoint.kind == Endpoint::Kind::kTcp ? uv_tcp_open(&handle_->tcp, fd) : uv_pipe_open(&handle_->pipe, fd);
  if (status != 0) {
    ::close(fd);
    release();
  }
  return status;
}

int Listener::fd() const {
  uv_os_fd_t fd = -1;
  if (handle_ == nullptr || uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) != 0) return -1;
  return fd;
}

void Listener::close() {
  if (handle_ != nullptr && endpoint_.kind == Endpoint::Kind::kUnix) ::unlink(endpoint_.path.c_str());
  release();
}

void Listener::release() {
  if (handle_ == nullptr) return;
  handle_->tcp.data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  handle_ = nullptr;
  accepting_ = false;
  paused_ = false;
}

}  // namespace stickyproxy
