#include "proxy/admin/admin_service.h"

#include <string>
#include <utility>

#include "proxy/core/access_log.h"

namespace stickyproxy {

AdminService::AdminService(uv_loop_t* loop, WorkerControl& control) : loop_(loop), commands_(control) {}

void AdminService::makeServer(const Config& config) {
  AdminServerOptions options;
  options.group = config.admin_group;
  options.idle_timeout = config.timeouts.admin_idle;
  options.take_connection = taker_;
  server_ = std::make_unique<AdminServer>(loop_, options, [this](const std::string& line, AdminServer::Reply reply) {
    commands_.execute(line, std::move(reply));
  });
}

void AdminService::start(const Config& config) {
  if (config.admin_socket.empty()) return;
  makeServer(config);
  std::string error;
  if (!server_->listen(config.admin_socket, &error)) {
    logError("admin socket disabled: " + error);
    server_.reset();
  } else {
    logInfo("admin socket at " + config.admin_socket);
  }
}

void AdminService::adopt(const Config& config, int fd) {
  makeServer(config);
  std::string error;
  if (!server_->adopt(fd, config.admin_socket, &error)) {
    logError("admin socket disabled: " + error);
    server_.reset();
  } else {
    logInfo("admin socket at " + config.admin_socket + " (taken over)");
  }
}

void AdminService::applyConfig(const Config& config) {
  if (server_) server_->setIdleTimeout(config.timeouts.admin_idle);
}

void AdminService::close() {
  if (server_) server_->close();
}

void AdminService::release() {
  if (server_) server_->release();
}

}  // namespace stickyproxy
