#include "backend/process/supervisor_watch.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <utility>

namespace stickyproxy::backend {

namespace {

pid_t pidFrom(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  long pid = std::strtol(text, &end, 10);
  return pid > 0 && pid < (1L << 22) && (*end == '\0' || *end == '\n') ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

SupervisorWatch::SupervisorWatch(uv_loop_t* loop, std::string log_prefix, std::function<void()> on_gone)
    : log_prefix_(std::move(log_prefix)), on_gone_(std::move(on_gone)), watch_(loop) {}

bool SupervisorWatch::start() {
  pid_t supervisor = pidFrom(std::getenv("STICKYPROXY_SUPERVISOR_PID"));
  if (supervisor == 0) return true;
  if (const char* file = std::getenv("STICKYPROXY_SUPERVISOR_PIDFILE")) pid_file_ = file;
  return watch(supervisor);
}

bool SupervisorWatch::watch(pid_t pid) {
  int error = watch_.watch(pid, [this] { supervisorExited(); });
  if (error == -ESRCH) return false;
  // Any other failure (no pidfd in this kernel): serve on, as a worker started by hand would.
  pid_ = pid;
  return true;
}

void SupervisorWatch::supervisorExited() {
  pid_t gone = pid_;
  std::string line;
  if (!pid_file_.empty()) {
    std::ifstream file(pid_file_);
    std::getline(file, line);
  }
  pid_t successor = pidFrom(line.c_str());
  if (successor != 0 && successor != gone && watch(successor)) {
    std::fprintf(stderr, "%s: supervisor pid %d exited; pid %d took over\n", log_prefix_.c_str(),
                 static_cast<int>(gone), static_cast<int>(successor));
    return;
  }
  std::fprintf(stderr, "%s: supervisor pid %d exited; stopping\n", log_prefix_.c_str(), static_cast<int>(gone));
  if (on_gone_) on_gone_();
}

}  // namespace stickyproxy::backend
