#include "proxy/net/pid_watch.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace stickyproxy {

struct PidWatch::Handle {
  uv_poll_t poll{};
  int pidfd = -1;
  PidWatch* owner = nullptr;  // cleared by close()
  std::function<void()> on_exit;
};

int PidWatch::watch(int pid, std::function<void()> on_exit) {
  close();
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return -errno;
  auto* handle = new Handle;
  handle->pidfd = pidfd;
  handle->owner = this;
  handle->on_exit = std::move(on_exit);
  handle->poll.data = handle;
  if (int error = uv_poll_init(loop_, &handle->poll, pidfd); error != 0) {
    ::close(pidfd);
    delete handle;
    return error;
  }
  // A pidfd becomes readable once its process has exited.
  uv_poll_start(&handle->poll, UV_READABLE, &PidWatch::onReadable);
  handle_ = handle;
  return 0;
}

int PidWatch::signal(int signum) const {
  if (handle_ == nullptr) return -ESRCH;
  return ::syscall(SYS_pidfd_send_signal, handle_->pidfd, signum, nullptr, 0) == 0 ? 0 : -errno;
}

void PidWatch::close() {
  if (handle_ == nullptr) return;
  handle_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), [](uv_handle_t* closed) {
    auto* handle = static_cast<Handle*>(closed->data);
    ::close(handle->pidfd);
    delete handle;
  });
  handle_ = nullptr;
}

void PidWatch::onReadable(uv_poll_t* poll, int /*status*/, int /*events*/) {
  auto* handle = static_cast<Handle*>(poll->data);
  PidWatch* owner = handle->owner;
  if (owner == nullptr) return;
  // Once only: closed before the callback, which may watch another pid or destroy the owner.
  std::function<void()> on_exit = std::move(handle->on_exit);
  owner->close();
  if (on_exit) on_exit();
}

}  // namespace stickyproxy
