// The admin socket wired to a running proxy: an AdminServer whose lines AdminCommands runs.
#pragma once

#include <uv.h>

#include <memory>

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
  // A reload: the clients' idle timeout follows config.timeouts.admin_idle.
  void applyConfig(const Config& config);
  // Closes the socket (removing its file) and every client. Idempotent.
  void close();

 private:
  uv_loop_t* loop_;
  AdminCommands commands_;
  std::unique_ptr<AdminServer> server_;
};

}  // namespace stickyproxy
