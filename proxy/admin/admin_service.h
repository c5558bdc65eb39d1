// The admin socket wired to a running proxy: an AdminServer whose lines AdminCommands runs.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "proxy/admin/admin_commands.h"
#include "proxy/admin/admin_server.h"
#include "proxy/config/config.h"
#include "proxy/core/worker_control.h"

namespace stickyproxy {

// `loop` (with a LoopContext) and `control` must outlive the service. Loop thread only.
class AdminService {
 public:
  AdminService(uv_loop_t* loop, WorkerControl& control);
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  // Listens on config.admin_socket (nothing when it is empty). A failure is logged and the
  // proxy runs without the admin socket.
  void start(const Config& config);
  // As start(), on the listening socket a predecessor handed over (owned from here on).
  void adopt(const Config& config, int fd);
  // Sees each line first (AdminServerOptions::take_connection); set before start().
  void setConnectionTaker(std::function<bool(const std::string& line, int fd)> taker) { taker_ = std::move(taker); }
  // The listening socket's descriptor, -1 when none.
  int listeningFd() const { return server_ ? server_->listeningFd() : -1; }
  // Stops accepting, leaving the socket to a successor; commands under way are answered.
  void release();
  // A reload: the clients' idle timeout follows config.timeouts.admin_idle.
  void applyConfig(const Config& config);
  // Closes the socket (removing its file) and every client. Idempotent.
  void close();

 private:
  uv_loop_t* loop_;
  AdminCommands commands_;
  // Makes server_ with the options of `config`.
  void makeServer(const Config& config);

  std::unique_ptr<AdminServer> server_;
  std::function<bool(const std::string& line, int fd)> taker_;
};

}  // namespace stickyproxy
