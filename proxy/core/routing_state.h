// What routing remembers across requests and restarts: the session table and its state file
// (<state_dir>/moved-keys.json), the routing-cookie secrets, and the admin's drained workers
// (<state_dir>/worker-states.json).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "proxy/config/config.h"
#include "proxy/core/session_saver.h"
#include "proxy/net/timer.h"
#include "proxy/routing/routing_cookie.h"
#include "proxy/routing/session_table.h"

namespace stickyproxy {

// `loop` and `config` must outlive the object; `config` is read again after each reload.
// Loop thread only.
class RoutingState {
 public:
  RoutingState(uv_loop_t* loop, const Config& config);
  RoutingState(const RoutingState&) = delete;
  RoutingState& operator=(const RoutingState&) = delete;

  // Loads (or makes) the routing secrets and loads the moved keys, then keeps the table's counts
  // and expiry up to date every second. False, with a logged error, when the secrets cannot be
  // had; an unreadable moved-keys file is logged and the table starts empty.
  bool start();
  // Stops the expiry timer (for shutdown).
  void stop();
  // Calls `done` once the table is on disk. Changes after this are not written. Before a
  // successful start() nothing is written: the file on disk was never read, and must stay.
  void flush(std::function<void()> done);
  // The config was reloaded: new table limits, and the secrets read again (a secret file that
  // cannot be read keeps the running secrets).
  void applyConfig();

  SessionTable& sessions() { return sessions_; }
  const SessionTable& sessions() const { return sessions_; }
  // Signs and checks routing cookies; null only before start().
  const CookieSigner* cookieSigner() const { return cookie_signer_.get(); }
  // A key was moved, pinned, announced or expired: the state file follows within a second.
  void sessionsChanged() { session_saver_.changed(); }
  // Saving goes on after a flush() for a hand-over that did not happen.
  void resumeSaving() { session_saver_.resume(); }
  // A moved key's session made a request: the state file follows within half a minute.
  void movedSessionUsed() { session_saver_.touched(); }

  // The workers the admin took out of rotation, as saved by saveDrainedWorkers(); names not in
  // the config are dropped. A missing file is an empty set; a corrupt one is logged and ignored.
  std::set<std::string> loadDrainedWorkers() const;
  // Replaces the file loadDrainedWorkers() reads; a failure is logged.
  void saveDrainedWorkers(const std::set<std::string>& names) const;

 private:
  bool loadCookieSigner();
  std::string movedKeysPath() const;
  std::string workerStatesPath() const;

  const Config& config_;
  SessionTable sessions_;
  std::shared_ptr<const CookieSigner> cookie_signer_;
  SessionSaver session_saver_;  // reads sessions_
  Timer expire_timer_;          // brings the session table's counts up to date
  bool started_ = false;  // start() succeeded: the table holds what was on disk
};

}  // namespace stickyproxy
