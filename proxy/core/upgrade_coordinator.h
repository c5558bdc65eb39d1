// The running proxy's side of a binary upgrade (see handover.h for the conversation): answers a
// successor's "handover" on the admin socket, and starts a successor for the admin command
// "upgrade".
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/core/handover.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

// `loop` (with a LoopContext) must outlive it. Loop thread only.
class UpgradeCoordinator {
 public:
  struct Hooks {
    // Everything to hand over (the admin socket included); descriptors stay ours.
    std::function<HandoverState()> state;
    // Saves what the successor reads at its start (the routing state), then calls `done`.
    std::function<void(std::function<void()> done)> save;
    // The successor `pid` serves now: stop accepting and retire.
    std::function<void(pid_t pid)> handed_over;
    // A handover that save() began did not happen: this process serves on.
    std::function<void()> abandoned;
  };
  // `executable` and `config_path`: what "upgrade" starts, with --take-over.
  // `take_over_timeout`: how long a successor may take from "handover" to "taken".
  UpgradeCoordinator(uv_loop_t* loop, std::string executable, std::string config_path,
                     std::chrono::milliseconds take_over_timeout, Hooks hooks);
  ~UpgradeCoordinator();
  UpgradeCoordinator(const UpgradeCoordinator&) = delete;
  UpgradeCoordinator& operator=(const UpgradeCoordinator&) = delete;

  // For AdminServerOptions::take_connection: takes the connection of a "handover" line.
  bool takeConnection(const std::string& line, int fd);
  // The admin command "upgrade": starts the successor; `done` gets the outcome.
  using Done = std::function<void(bool ok, const std::string& message)>;
  void upgrade(Done done);

 private:
  struct Successor;  // the process "upgrade" started
  static void onReadable(uv_poll_t* poll, int status, int events);
  void readTaken();
  // Ends the conversation; `outcome` (empty: success) goes to the waiting "upgrade" replies.
  void finish(const std::string& outcome);
  void answerUpgrades(bool ok, const std::string& message);

  uv_loop_t* loop_;
  std::string executable_;
  std::string config_path_;
  std::chrono::milliseconds take_over_timeout_;
  Hooks hooks_;
  int fd_ = -1;           // the successor's connection, while a handover runs
  pid_t peer_pid_ = 0;    // its process, from the socket's credentials
  uv_poll_t* poll_ = nullptr;
  std::string input_;
  Timer timer_;
  bool handed_over_ = false;
  bool saved_ = false;  // save() ran for the handover under way
  Successor* successor_ = nullptr;
  std::vector<Done> waiting_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy
