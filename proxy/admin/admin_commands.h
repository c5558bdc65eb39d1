// The admin socket's commands: what an operator can ask the running proxy.
#pragma once

#include <string>
#include <vector>

#include "proxy/admin/admin_server.h"
#include "proxy/core/worker_control.h"

namespace stickyproxy {

// Parses one admin line and runs it against `control`. Grammar (words separated by blanks):
//
//   help | show workers | show sessions [WORKER] | drain WORKER [wait [SECONDS]] |
//   ready WORKER | evict WORKER | restart WORKER [SECONDS] | reload | upgrade
//
// A final word `json` asks for the answer as one JSON object: {"ok": true, ...} or
// {"ok": false, "error": "..."}. Human answers that report a failure start with "error:" (bad
// command, unknown worker) or "timeout:" (a wait that ran out); `stickyproxy ctl` exits non-zero
// on those. Every answer is produced once, possibly later (drain wait, restart).
// `control` must outlive this object. Loop thread only.
class AdminCommands {
 public:
  explicit AdminCommands(WorkerControl& control) : control_(control) {}

  void execute(const std::string& line, AdminServer::Reply reply);

  // The longest wait a client may ask for (drain wait, restart), in seconds.
  static constexpr int kMaxWaitSeconds = 3600;
  // The wait when none is given.
  static constexpr int kDefaultWaitSeconds = 60;

 private:
  WorkerControl& control_;
};

// Splits `line` on blanks (spaces and tabs).
std::vector<std::string> splitAdminWords(const std::string& line);

}  // namespace stickyproxy
