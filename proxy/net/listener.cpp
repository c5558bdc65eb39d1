#include "proxy/net/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace stickyproxy {

Listener::Listener(uv_loop_t* loop) : loop_(loop) {}

Listener::~Listener() { close(); }

int Listener::bind(const Endpoint& endpoint, AcceptCallback on_accept, int unix_mode) {
  close();
  endpoint_ = endpoint;
  on_accept_ = std::move(on_accept);
  handle_ = new Handle;
  int status;
  if (endpoint.kind == Endpoint::Kind::kTcp) {
    uv_tcp_init(loop_, &handle_->tcp);
    handle_->tcp.data = this;
    status = bindTcp(endpoint);
  } else {
    uv_pipe_init(loop_, &handle_->pipe, 0);
    handle_->pipe.data = this;
    ::unlink(endpoint.path.c_str());
    // Tighten the umask around bind so the socket never exists with looser permissions.
    mode_t old_mask = unix_mode != 0 ? ::umask(0777 & ~static_cast<mode_t>(unix_mode)) : 0;
    status = uv_pipe_bind(&handle_->pipe, endpoint.path.c_str());
    if (unix_mode != 0) {
      ::umask(old_mask);
      if (status == 0) ::chmod(endpoint.path.c_str(), static_cast<mode_t>(unix_mode));
    }
  }
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

void Listener::close() {
  if (handle_ == nullptr) return;
  handle_->tcp.data = nullptr;
  if (endpoint_.kind == Endpoint::Kind::kUnix) ::unlink(endpoint_.path.c_str());
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  handle_ = nullptr;
  accepting_ = false;
  paused_ = false;
}

}  // namespace stickyproxy
