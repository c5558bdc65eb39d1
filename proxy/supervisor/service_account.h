// The account the proxy serves as and its workers run as ([proxy] user, group, allow_root), and
// the one-way switch from root to it once the sockets are bound.
//
// Started as root with `user` set, the proxy binds its listeners, metrics listener and admin
// socket, spawns its first workers straight into the account (uv_spawn's SETUID/SETGID), gives
// the account what it must keep using (state directory, routing secret, admin socket), and then
// drops root for good. Started as root without `user` it refuses to serve unless `allow_root`.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"

namespace stickyproxy {

// Who the proxy serves as, resolved against the account database.
struct ServiceAccount {
  std::string user;   // names, for messages; empty when the proxy keeps who started it
  std::string group;
  uid_t uid = 0;
  gid_t gid = 0;
  // The process is root and must become uid/gid: workers are spawned as the account, and
  // dropPrivileges() switches the proxy itself.
  bool switch_needed = false;
};

// A ServiceAccount, or why the proxy must not serve.
struct ServiceAccountCheck {
  std::optional<ServiceAccount> account;
  std::string error;  // set when `account` is empty; names the config key to change
};

// The problems `stickyproxy -t` reports about [proxy] user and group: names that do not exist
// on this host. Does not depend on who runs the check.
std::vector<std::string> serviceAccountProblems(const Config& config);

// Who to serve as when the process runs with effective ids `euid`/`egid`:
//  - root, `user` set (and not root itself): switch to it (`group`, else the user's primary group);
//  - root, no `user` (or `user` is root): refused unless `allow_root`, then stay root;
//  - not root, `user` set: fine when the process already is that user (and group, when `group`
//    is set); anything else is refused, since only root could switch;
//  - not root, no `user`: stay.
ServiceAccountCheck resolveServiceAccount(const Config& config, uid_t euid, gid_t egid);

// Creates `config.state_dir` (mode 0700) and the missing directories of the supervised workers'
// Unix sockets. When `account.switch_needed`, gives the account the state directory with all it
// holds (files left by an earlier run as root included) and the socket directories this call
// created, so that workers spawned as the account can write there; then, when switching, checks
// accountReachProblem(). Returns "" or what failed.
std::string prepareServiceDirectories(const Config& config, const ServiceAccount& account);

// What would stop processes running as `account` from using the state directory, the
// supervised workers' socket directories (write) and their commands (run), the search
// permission on every directory above them included; "" when nothing does.
std::string accountReachProblem(const Config& config, const ServiceAccount& account);

// Run once the listeners are bound, before serving: gives the account the state directory's
// contents, the routing secret file (re-read on every reload) and the admin socket, then drops
// root (dropPrivileges()). No-op unless `account.switch_needed`. Returns "" or what failed: the
// proxy must then stop.
std::string handOverToServiceAccount(const Config& config, const ServiceAccount& account);

// Switches the process to `account` for good, in the only order that works: supplementary groups
// dropped (libuv drops them for the workers it spawns as the account too, so a worker's groups do
// not depend on whether it was spawned before or after the switch), then setgid, then setuid. Then checks that root cannot be had back: real, effective and saved ids are the
// account's, and setuid(0)/setgid(0) fail. Returns "" or what failed.
std::string dropPrivileges(const ServiceAccount& account);

}  // namespace stickyproxy
