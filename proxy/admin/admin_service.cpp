#include "proxy/admin/admin_service.h"

#include <string>
#include <utility>

#include "proxy/core/access_log.h"

namespace stickyproxy {

AdminService::AdminService(uv_loop_t* loop, WorkerControl& control) : loop_(loop), commands_(control) {}

void AdminService::start(const Config& config) {
  if (config.admin_socket.empty()) return;
  AdminServerOptions options;
  options.group = config.admin_group;
  options.idle_timeout = config.timeouts.admin_idle;
  server_ = std::make_unique<AdminServer>(loop_, options, [this](const std::string& line, AdminServer::Reply reply) {
    commands_.execute(line, std::move(reply));
  });
  std::string error;
  if (!server_->listen(config.admin_socket, &error)) {
    logError("admin socket disabled: " + error);
    server_.reset();
  } else {
    logInfo("admin socket at " + config.admin_socket);
  }
}

void AdminService::applyConfig(const Config& config) {
  if (server_) server_->setIdleTimeout(config.timeouts.admin_idle);
}

void AdminService::close() {
  if (server_) server_->close();
}

}  // namespace stickyproxy
