// A binary upgrade's handover: what a running proxy gives the process that succeeds it (its
// listening sockets, its workers' processes), and the successor's side of that conversation.
//
// The conversation, on the predecessor's admin socket (proxy/core/upgrade_coordinator.h):
//   successor:   "handover\n"
//   predecessor: one message (fd_passing.h): HandoverState as JSON, the sockets attached
//   successor:   "taken <pid>\n"   once it accepts on them and its workers answer
//   predecessor: "released\n"      it no longer accepts; it finishes what it has and exits
// A successor that closes the connection before "taken" leaves the predecessor serving.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/net/endpoint.h"

namespace stickyproxy {

struct HandedSocket {
  std::string role;  // "listen", "tls", "metrics" or "admin"
  Endpoint endpoint;
  int fd = -1;  // in the receiving process; -1 once taken
};

struct HandedWorker {
  std::string name;
  pid_t pid = 0;
  std::string address;            // Address::toString()
  std::vector<std::string> argv;  // as spawned: a successor with another one restarts the worker
  uint64_t restarts = 0;
};

struct HandoverState {
  pid_t pid = 0;  // the predecessor
  std::string version;
  std::vector<HandedSocket> sockets;
  std::vector<HandedWorker> workers;

  // The socket of `role` when it serves `configured` (a configured port 0 takes any port).
  // Takes it: the caller owns the returned descriptor. Empty when there is none.
  std::optional<HandedSocket> takeSocket(const std::string& role, const Address& configured);
  // The handed worker named `name`, or nullptr.
  const HandedWorker* worker(const std::string& name) const;
  // Closes every descriptor not taken.
  void closeUntaken();
};

// JSON with each socket's descriptor given as its index in `fds` (the descriptors to attach).
std::string handoverJson(const HandoverState& state, std::vector<int>* fds);
// Parses handoverJson()'s text, with `fds` the descriptors received; false with `*error` on any
// inconsistency (then no descriptor is used: the caller closes them).
bool parseHandover(const std::string& json, const std::vector<int>& fds, HandoverState* state, std::string* error);

// The successor's end of the conversation.
class HandoverClient {
 public:
  HandoverClient() = default;
  ~HandoverClient();  // closes the connection (a predecessor not yet told "taken" keeps serving)
  HandoverClient(const HandoverClient&) = delete;
  HandoverClient& operator=(const HandoverClient&) = delete;

  // Connects to the admin socket at `admin_socket` and receives the state. False with `*error`.
  bool receive(const std::string& admin_socket, std::chrono::milliseconds timeout, std::string* error);
  HandoverState& state() { return state_; }
  // Tells the predecessor this process serves now and waits until it stopped accepting.
  bool confirm(std::chrono::milliseconds timeout, std::string* error);

 private:
  int fd_ = -1;
  HandoverState state_;
};

}  // namespace stickyproxy
