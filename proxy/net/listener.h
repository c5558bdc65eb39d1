// A listening socket that hands accepted connections to a callback.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

#include "proxy/net/endpoint.h"
#include "proxy/net/stream.h"

namespace stickyproxy {

// Owns one listening uv_tcp_t or uv_pipe_t. `loop` must outlive it. Loop thread only.
class Listener {
 public:
  using AcceptCallback = std::function<void(StreamPtr)>;
  explicit Listener(uv_loop_t* loop);
  ~Listener();  // closes the socket (and removes a Unix socket file it created)
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds without listening: connections are refused until startAccepting(), which needs no
  // privilege (a process may bind as root and accept as its service user). For a Unix socket a
  // stale file at the path is replaced and the socket gets `unix_mode` (e.g. 0600) when
  // non-zero. Returns 0 or a libuv error code.
  int bind(const Endpoint& endpoint, AcceptCallback on_accept, int unix_mode = 0);
  // Listens on the bound socket and hands each connection to the callback. Returns 0 or a
  // libuv error code; a second call does nothing.
  int startAccepting(int backlog = 1024);
  // bind() and startAccepting().
  int listen(const Endpoint& endpoint, AcceptCallback on_accept, int unix_mode = 0, int backlog = 1024);
  // Takes `fd`, a socket bound (and perhaps listening) elsewhere for `endpoint`, as bind()
  // would have made it: owned from here on (closed on failure too). Returns 0 or a libuv error.
  int adopt(int fd, const Endpoint& endpoint, AcceptCallback on_accept);
  // The socket's descriptor (to hand to a successor process), or -1 when closed.
  int fd() const;
  // The bound address (the kernel's port when the endpoint asked for port 0).
  Endpoint boundEndpoint() const;
  // Stops and restarts accepting (connections wait in the kernel's backlog meanwhile).
  void pause();
  void resume();
  void close();
  // As close(), but a Unix socket's file stays: a successor process serves it from now on.
  void release();

 private:
  static void onConnection(uv_stream_t* server, int status);
  // A fresh handle for `endpoint` (closing any earlier one), not yet bound.
  void makeHandle(const Endpoint& endpoint, AcceptCallback on_accept);
  int bindTcp(const Endpoint& endpoint);
  int bindUnix(const Endpoint& endpoint, int unix_mode);

  uv_loop_t* loop_;
  Endpoint endpoint_;
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  Handle* handle_ = nullptr;
  AcceptCallback on_accept_;
  bool accepting_ = false;
  bool paused_ = false;
};

}  // namespace stickyproxy
