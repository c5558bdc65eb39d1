// The admin socket: a Unix socket taking one command per line.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "proxy/net/listener.h"

namespace stickyproxy {

struct AdminServerOptions {
  size_t max_line = 4096;        // a longer line gets an error and the connection closes
  size_t max_connections = 16;   // further clients get an error line and are closed
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};  // no command for this long: close
  size_t max_output = 256 * 1024;  // answers the client has not read: beyond this it is closed
  unsigned mode = 0600;            // the socket file's permissions
  std::string group;               // when non-empty, the socket file's group (and mode gets g+rw)
  // When set, sees each line before the handler. Returning true takes the connection out of
  // the line protocol: the server closes its end after handing over `fd`, a duplicate of the
  // client's socket, which the callee then owns.
  std::function<bool(const std::string& line, int fd)> take_connection;
};

// Serves the admin protocol's framing; what a command means is the handler's business.
//
// Each line (LF or CRLF terminated, blank lines ignored) goes to the handler, one at a time: the
// next line waits until the previous one was answered, so an answer may come later (e.g. after a
// drain). Every answer is written followed by an empty line, so an interactive client (socat)
// sees where it ends. A client that half-closes gets the answers to the lines it sent, then EOF.
// No client can wedge the server: long lines, idle clients, clients that do not read their
// answers and connections beyond the limit are cut off with a log line.
//
// `loop` (with a LoopContext) must outlive the server. Loop thread only.
class AdminServer {
 public:
  // Delivers the answer to one line; call at most once. Safe to call after the client or the
  // server went away (the answer is then dropped).
  using Reply = std::function<void(const std::string& answer)>;
  using Handler = std::function<void(const std::string& line, Reply reply)>;

  AdminServer(uv_loop_t* loop, AdminServerOptions options, Handler handler);
  ~AdminServer();  // close()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens on the Unix socket `path` with options.mode. A stale socket file (nobody accepts on
  // it) is replaced; a live one (another proxy) or a file that is not a socket is left alone
  // and reported. Returns false with `*error` set on failure.
  bool listen(const std::string& path, std::string* error);
  // Serves on `fd`, the listening socket a predecessor process handed over (owned from here on).
  bool adopt(int fd, const std::string& path, std::string* error);
  // The listening socket's descriptor, -1 when none.
  int listeningFd() const { return listener_ ? listener_->fd() : -1; }
  // Closes the listener (removing the socket file) and every client connection. Idempotent.
  void close();
  // Stops accepting, leaving the socket (and its file) to the successor that took it; each
  // client's command under way is still answered, then its connection closes.
  void release();
  // Applies to each client's idle wait from its next command on.
  void setIdleTimeout(std::chrono::milliseconds timeout) { options_.idle_timeout = timeout; }
  size_t connectionCount() const { return connections_.size(); }

 private:
  class Connection;
  friend class Connection;
  void onAccept(StreamPtr stream);
  // Forgets a closed connection, after the current callback (it may be on the stack).
  void forget(uint64_t id);

  uv_loop_t* loop_;
  AdminServerOptions options_;
  Handler handler_;
  std::unique_ptr<Listener> listener_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::map<uint64_t, std::shared_ptr<Connection>> refused_;  // beyond the limit, until told so
  uint64_t next_id_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy
