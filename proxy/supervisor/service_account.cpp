#include "proxy/supervisor/service_account.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "proxy/net/file_util.h"

namespace stickyproxy {

namespace {

// Deeper than any state directory the proxy or the bundled app makes; a bound on a walk
// through a tree the unprivileged account can shape.
constexpr int kMaxTreeDepth = 64;

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// "FILE: proxy.KEY: ", the prefix of a message about one key, like the config loader's.
std::string keyPrefix(const Config& config, const char* key) {
  return (config.source_path.empty() ? std::string() : config.source_path + ": ") + "proxy." + key + ": ";
}

struct UserEntry {
  uid_t uid;
  gid_t primary_gid;
};

std::optional<UserEntry> findUser(const std::string& name) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return UserEntry{entry.pw_uid, entry.pw_gid};
}

std::optional<gid_t> findGroup(const std::string& name) {
  group entry{};
  group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return entry.gr_gid;
}

// The name of group `gid`, or its number when it has none.
std::string groupName(gid_t gid) {
  group entry{};
  group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::to_string(gid);
  }
  return entry.gr_name;
}

bool ownedBy(const struct stat& info, uid_t uid, gid_t gid) { return info.st_uid == uid && info.st_gid == gid; }

// Gives the directory open as `dir_fd` and everything below it to uid/gid. Never follows a
// symbolic link (the account may have planted one to make root chown something else): links
// are chowned themselves, subdirectories are opened with O_NOFOLLOW relative to their parent.
std::string giveTree(int dir_fd, const std::string& shown, uid_t uid, gid_t gid, int depth) {
  struct stat info {};
  if (::fstat(dir_fd, &info) != 0) return shown + ": " + errnoText(errno);
  if (!ownedBy(info, uid, gid) && ::fchown(dir_fd, uid, gid) != 0) return "cannot chown " + shown + ": " + errnoText(errno);
  if (depth >= kMaxTreeDepth) return shown + ": nested deeper than " + std::to_string(kMaxTreeDepth) + " directories";
  int listing_fd = ::dup(dir_fd);
  DIR* listing = listing_fd < 0 ? nullptr : ::fdopendir(listing_fd);
  if (listing == nullptr) {
    int error = errno;
    if (listing_fd >= 0) ::close(listing_fd);
    return shown + ": " + errnoText(error);
  }
  std::string problem;
  while (problem.empty()) {
    errno = 0;
    dirent* entry = ::readdir(listing);
    if (entry == nullptr) {
      if (errno != 0) problem = shown + ": " + errnoText(errno);
      break;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string child_shown = shown + "/" + name;
    struct stat child {};
    if (::fstatat(dir_fd, name.c_str(), &child, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) problem = child_shown + ": " + errnoText(errno);
      continue;
    }
    if (S_ISDIR(child.st_mode)) {
      int child_fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child_fd < 0) {
        if (errno != ENOENT) problem = child_shown + ": " + errnoText(errno);
        continue;
      }
      problem = giveTree(child_fd, child_shown, uid, gid, depth + 1);
      ::close(child_fd);
    } else if (!ownedBy(child, uid, gid) &&
               ::fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT) {
      problem = "cannot chown " + child_shown + ": " + errnoText(errno);
    }
  }
  ::closedir(listing);
  return problem;
}

// Gives `path` (a directory the admin named; a link to it is followed) and its tree to the account.
std::string giveDirectory(const std::string& path, const ServiceAccount& account) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return path + ": " + errnoText(errno);
  std::string problem = giveTree(fd, path, account.uid, account.gid, 0);
  ::close(fd);
  return problem;
}

// Gives the file `path` itself (not what a link there points to) to the account.
std::string giveEntry(const std::string& path, const ServiceAccount& account) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return path + ": " + errnoText(errno);
  if (ownedBy(info, account.uid, account.gid)) return "";
  if (::fchownat(AT_FDCWD, path.c_str(), account.uid, account.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return "cannot chown " + path + ": " + errnoText(errno);
  }
  return "";
}

// The permission bits of `info` that apply to the account: owner, group (its primary group:
// the switch drops supplementary ones), or other.
int accountBits(const struct stat& info, const ServiceAccount& account) {
  mode_t mode = info.st_mode;
  if (info.st_uid == account.uid) return static_cast<int>((mode >> 6) & 7);
  if (info.st_gid == account.gid) return static_cast<int>((mode >> 3) & 7);
  return static_cast<int>(mode & 7);
}

std::string modeText(const struct stat& info) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(info.st_mode & 07777));
  return text;
}

// "" when the account can reach `path` (search permission on every directory above it) and has
// `want` (4 read, 2 write, 1 execute/search) on it; else which entry stops it and why.
std::string accountAccessProblem(const std::string& path, const ServiceAccount& account, int want) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::path real = fs::canonical(path, error);
  if (error) return path + ": " + error.message();
  const fs::path relative = real.relative_path();
  fs::path walked = real.root_path();
  for (auto part = relative.begin();; ++part) {
    struct stat info {};
    if (::stat(walked.c_str(), &info) != 0) return walked.string() + ": " + errnoText(errno);
    bool last = part == relative.end();
    int needed = last ? want : 1;
    if ((accountBits(info, account) & needed) != needed) {
      const char* what = !last ? "search" : (needed & 2) ? "write to" : (needed & 4) ? "read" : "run";
      return walked.string() + " (owner uid " + std::to_string(info.st_uid) + ", gid " + std::to_string(info.st_gid) +
             ", mode " + modeText(info) + ") does not let " + account.user + " " + what + " it";
    }
    if (last) return "";
    walked /= *part;
  }
}

std::string accountText(const ServiceAccount& account) {
  return account.user + " (uid " + std::to_string(account.uid) + ", group " + account.group + " gid " +
         std::to_string(account.gid) + ")";
}

}  // namespace

std::vector<std::string> serviceAccountProblems(const Config& config) {
  std::vector<std::string> problems;
  if (!config.user.empty() && !findUser(config.user)) {
    problems.push_back(keyPrefix(config, "user") + "no user " + quoted(config.user) + " on this host");
  }
  if (!config.group.empty() && !findGroup(config.group)) {
    problems.push_back(keyPrefix(config, "group") + "no group " + quoted(config.group) + " on this host");
  }
  if (!config.group.empty() && config.user.empty()) {
    problems.push_back(keyPrefix(config, "group") + "is set without proxy.user; set both, or neither");
  }
  return problems;
}

ServiceAccountCheck resolveServiceAccount(const Config& config, uid_t euid, gid_t egid) {
  ServiceAccountCheck check;
  std::vector<std::string> problems = serviceAccountProblems(config);
  if (!problems.empty()) {
    check.error = problems.front();
    return check;
  }
  if (config.user.empty()) {
    if (euid == 0 && !config.allow_root) {
      check.error = keyPrefix(config, "user") +
                    "refusing to serve as root: set proxy.user to the account to serve as (the proxy binds its "
                    "sockets as root, then switches to it), or allow_root = yes to serve as root anyway";
      return check;
    }
    check.account = ServiceAccount{"", "", euid, egid, false};
    return check;
  }
  UserEntry user = *findUser(config.user);
  ServiceAccount account;
  account.user = config.user;
  account.uid = user.uid;
  account.gid = config.group.empty() ? user.primary_gid : *findGroup(config.group);
  account.group = config.group.empty() ? groupName(account.gid) : config.group;
  if (account.uid == 0) {
    if (euid != 0) {
      check.error = keyPrefix(config, "user") + quoted(config.user) + " is root, and only root can become it";
      return check;
    }
    if (!config.allow_root) {
      check.error = keyPrefix(config, "user") + quoted(config.user) +
                    " is root: refusing to serve as root; name an unprivileged account, or set allow_root = yes";
      return check;
    }
  }
  if (euid == 0) {
    account.switch_needed = account.uid != 0 || account.gid != egid;
    check.account = std::move(account);
    return check;
  }
  if (euid != account.uid) {
    check.error = keyPrefix(config, "user") + "running as uid " + std::to_string(euid) + ", not as " +
                  quoted(config.user) + " (uid " + std::to_string(account.uid) +
                  "): start the proxy as root (it switches after binding its sockets) or as that user";
    return check;
  }
  if (!config.group.empty() && egid != account.gid) {
    check.error = keyPrefix(config, "group") + "running as gid " + std::to_string(egid) + ", not as group " +
                  quoted(config.group) + " (gid " + std::to_string(account.gid) +
                  "): start the proxy as root or with that group";
    return check;
  }
  check.account = std::move(account);
  return check;
}

std::string prepareServiceDirectories(const Config& config, const ServiceAccount& account) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(config.state_dir, error);
  if (error) return "cannot create state_dir " + config.state_dir + ": " + error.message();
  if (::chmod(config.state_dir.c_str(), 0700) != 0) {
    return "cannot chmod 700 " + config.state_dir + ": " + errnoText(errno);
  }
  if (account.switch_needed) {
    if (std::string problem = giveDirectory(config.state_dir, account); !problem.empty()) return problem;
  }
  for (const WorkerConfig& worker : config.workers) {
    if (!worker.supervised() || worker.address.kind != Address::Kind::kUnix) continue;
    // The directories this call creates, deepest first; existing ones (such as /tmp) keep their owner.
    std::vector<fs::path> created;
    for (fs::path dir = fs::path(worker.address.path).parent_path(); !dir.empty() && !fs::exists(dir, error);
         dir = dir.parent_path()) {
      created.push_back(dir);
      if (dir == dir.parent_path()) break;
    }
    fs::create_directories(fs::path(worker.address.path).parent_path(), error);
    if (error) return "cannot create the directory of " + worker.address.path + ": " + error.message();
    if (!account.switch_needed) continue;
    for (const fs::path& dir : created) {
      if (std::string problem = giveEntry(dir.string(), account); !problem.empty()) return problem;
    }
  }
  return account.switch_needed ? accountReachProblem(config, account) : "";
}

std::string accountReachProblem(const Config& config, const ServiceAccount& account) {
  namespace fs = std::filesystem;
  // Workers spawned as the account find what their command line names, or crash-loop.
  if (std::string problem = accountAccessProblem(config.state_dir, account, 7); !problem.empty()) {
    return "state_dir: " + problem;
  }
  for (const WorkerConfig& worker : config.workers) {
    if (!worker.supervised()) continue;
    if (worker.address.kind == Address::Kind::kUnix) {
      std::string dir = fs::path(worker.address.path).parent_path().string();
      if (std::string problem = accountAccessProblem(dir, account, 3); !problem.empty()) {
        return "worker " + worker.name + ": its socket directory cannot be used: " + problem +
               " (give it to the account, or remove it so that the proxy makes it)";
      }
    }
    if (worker.command.find('/') != std::string::npos) {
      if (std::string problem = accountAccessProblem(worker.command, account, 1); !problem.empty()) {
        return "worker " + worker.name + ": its command cannot be run: " + problem;
      }
    }
  }
  return "";
}

std::string handOverToServiceAccount(const Config& config, const ServiceAccount& account) {
  if (!account.switch_needed) return "";
  // Files written while root (the routing secret when it was just made, saved state) included.
  if (std::string problem = giveDirectory(config.state_dir, account); !problem.empty()) return problem;
  // Reloads re-read the routing secret; it stays 0600, now the account's.
  if (!config.routing.secret_file.empty()) {
    if (std::string problem = giveEntry(config.routing.secret_file, account); !problem.empty()) return problem;
  }
  // The admin socket keeps its mode (0600, or 0660 for admin_group): the account may use it
  // and remove it when it stops.
  if (!config.admin_socket.empty() && ::access(config.admin_socket.c_str(), F_OK) == 0) {
    gid_t socket_group = config.admin_group.empty() ? account.gid : static_cast<gid_t>(-1);
    if (::fchownat(AT_FDCWD, config.admin_socket.c_str(), account.uid, socket_group, AT_SYMLINK_NOFOLLOW) != 0) {
      return "cannot chown the admin socket " + config.admin_socket + ": " + errnoText(errno);
    }
  }
  return dropPrivileges(account);
}

std::string dropPrivileges(const ServiceAccount& account) {
  if (!account.switch_needed) return "";
  const std::string who = accountText(account);
  if (::setgroups(0, nullptr) != 0) return "cannot drop the supplementary groups for " + who + ": " + errnoText(errno);
  if (::setgid(account.gid) != 0) return "cannot switch to the group of " + who + ": " + errnoText(errno);
  if (::setuid(account.uid) != 0) return "cannot switch to " + who + ": " + errnoText(errno);

  uid_t real_uid = 0, effective_uid = 0, saved_uid = 0;
  gid_t real_gid = 0, effective_gid = 0, saved_gid = 0;
  if (::getresuid(&real_uid, &effective_uid, &saved_uid) != 0 ||
      ::getresgid(&real_gid, &effective_gid, &saved_gid) != 0) {
    return "cannot read back the process's ids: " + errnoText(errno);
  }
  if (real_uid != account.uid || effective_uid != account.uid || saved_uid != account.uid ||
      real_gid != account.gid || effective_gid != account.gid || saved_gid != account.gid) {
    return "switched to " + who + " only in part (uids " + std::to_string(real_uid) + "/" +
           std::to_string(effective_uid) + "/" + std::to_string(saved_uid) + ", gids " + std::to_string(real_gid) +
           "/" + std::to_string(effective_gid) + "/" + std::to_string(saved_gid) + ")";
  }
  if (::getgroups(0, nullptr) != 0) return "switched to " + who + " but supplementary groups remain";
  if (account.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    return "switched to " + who + " but could become root again";
  }
  if (account.gid != 0 && account.uid != 0 && (::setgid(0) == 0 || ::setegid(0) == 0)) {
    return "switched to " + who + " but could take group 0 again";
  }
  return "";
}

}  // namespace stickyproxy
