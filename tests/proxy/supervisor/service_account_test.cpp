#include "proxy/supervisor/service_account.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "tests/proxy/supervisor/test_loop.h"

namespace stickyproxy {
namespace {

using test::TempDir;

// Every Debian host has these; the integration tests serve as them too.
constexpr uid_t kNobodyUid = 65534;
constexpr gid_t kNogroupGid = 65534;

Config configFor(const std::string& user, const std::string& group = "", bool allow_root = false) {
  Config config;
  config.source_path = "/etc/stickyproxy/test.conf";
  config.user = user;
  config.group = group;
  config.allow_root = allow_root;
  return config;
}

struct stat statOf(const std::string& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info;
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  REQUIRE(std::filesystem::exists(path));
}

// Runs `body` in a forked child (a switch of ids is for good) and returns its exit status:
// 0 when `body` returned "", else 1 after printing what it returned.
int inChild(const std::function<std::string()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string problem = body();
    if (!problem.empty()) std::fprintf(stderr, "child: %s\n", problem.c_str());
    ::_exit(problem.empty() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("root without a user is refused unless allow_root, and the message says what to set", "[supervisor]") {
  ServiceAccountCheck refused = resolveServiceAccount(configFor(""), 0, 0);
  CHECK_FALSE(refused.account);
  CHECK(refused.error.find("/etc/stickyproxy/test.conf: proxy.user:") == 0);
  CHECK(refused.error.find("refusing to serve as root") != std::string::npos);
  CHECK(refused.error.find("allow_root = yes") != std::string::npos);

  ServiceAccountCheck allowed = resolveServiceAccount(configFor("", "", true), 0, 0);
  REQUIRE(allowed.account);
  CHECK_FALSE(allowed.account->switch_needed);
  CHECK(allowed.account->uid == 0);

  ServiceAccountCheck root_by_name = resolveServiceAccount(configFor("root"), 0, 0);
  CHECK_FALSE(root_by_name.account);
  CHECK(root_by_name.error.find("is root") != std::string::npos);
  ServiceAccountCheck root_allowed = resolveServiceAccount(configFor("root", "", true), 0, 0);
  REQUIRE(root_allowed.account);
  CHECK_FALSE(root_allowed.account->switch_needed);
}

TEST_CASE("root with a user switches to it, with its primary group or the one named", "[supervisor]") {
  ServiceAccountCheck primary = resolveServiceAccount(configFor("nobody"), 0, 0);
  REQUIRE(primary.account);
  CHECK(primary.account->switch_needed);
  CHECK(primary.account->uid == kNobodyUid);
  CHECK(primary.account->gid == kNogroupGid);
  CHECK(primary.account->group == "nogroup");

  ServiceAccountCheck named = resolveServiceAccount(configFor("nobody", "daemon"), 0, 0);
  REQUIRE(named.account);
  CHECK(named.account->uid == kNobodyUid);
  CHECK(named.account->gid == ::getgrnam("daemon")->gr_gid);
  CHECK(named.account->group == "daemon");
}

TEST_CASE("not root: a user is fine when the process already is it, refused otherwise", "[supervisor]") {
  ServiceAccountCheck same = resolveServiceAccount(configFor("nobody"), kNobodyUid, kNogroupGid);
  REQUIRE(same.account);
  CHECK_FALSE(same.account->switch_needed);

  ServiceAccountCheck other = resolveServiceAccount(configFor("nobody"), 1000, 1000);
  CHECK_FALSE(other.account);
  CHECK(other.error.find("proxy.user: running as uid 1000, not as \"nobody\" (uid 65534)") != std::string::npos);

  ServiceAccountCheck other_group = resolveServiceAccount(configFor("nobody", "daemon"), kNobodyUid, kNogroupGid);
  CHECK_FALSE(other_group.account);
  CHECK(other_group.error.find("proxy.group: running as gid 65534") != std::string::npos);

  // Nobody asked for an account: a process that is not root stays who it is.
  ServiceAccountCheck unset = resolveServiceAccount(configFor(""), 1000, 1000);
  REQUIRE(unset.account);
  CHECK_FALSE(unset.account->switch_needed);
  CHECK(unset.account->uid == 1000);
}

TEST_CASE("unknown users and groups are problems that name their key", "[supervisor]") {
  std::vector<std::string> problems = serviceAccountProblems(configFor("no-such-user-sp", "no-such-group-sp"));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "/etc/stickyproxy/test.conf: proxy.user: no user \"no-such-user-sp\" on this host");
  CHECK(problems[1] == "/etc/stickyproxy/test.conf: proxy.group: no group \"no-such-group-sp\" on this host");
  CHECK(serviceAccountProblems(configFor("nobody", "nogroup")).empty());
  CHECK(serviceAccountProblems(configFor("", "nogroup")).size() == 1);

  ServiceAccountCheck check = resolveServiceAccount(configFor("no-such-user-sp"), 0, 0);
  CHECK_FALSE(check.account);
  CHECK(check.error.find("no user \"no-such-user-sp\"") != std::string::npos);
}

TEST_CASE("the state directory becomes 0700 and the account's, links in it are not followed", "[supervisor]") {
  if (::geteuid() != 0) {
    WARN("not root: chown cannot be tested");
    return;
  }
  TempDir dir;
  const std::string state = dir.path() + "/state";
  std::filesystem::create_directories(state + "/sessions/abc");
  writeText(state + "/moved-keys.json", "{}");
  writeText(state + "/sessions/abc/data.csv", "a,b\n");
  const std::string outside = dir.path() + "/outside.txt";
  writeText(outside, "root's");
  REQUIRE(::symlink(outside.c_str(), (state + "/planted-link").c_str()) == 0);
  REQUIRE(::symlink(dir.path().c_str(), (state + "/planted-dir-link").c_str()) == 0);

  Config config = configFor("nobody");
  config.state_dir = state;
  WorkerConfig worker;
  worker.name = "w1";
  worker.command = "/bin/true";
  worker.address.kind = Address::Kind::kUnix;
  worker.address.path = dir.path() + "/run/sockets/w1.sock";
  config.workers.push_back(worker);
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);  // the account must reach what it is given

  ServiceAccountCheck check = resolveServiceAccount(config, 0, 0);
  REQUIRE(check.account);
  REQUIRE(prepareServiceDirectories(config, *check.account) == "");

  CHECK((statOf(state).st_mode & 07777) == 0700);
  for (const std::string& path : {state, state + "/moved-keys.json", state + "/sessions", state + "/sessions/abc",
                                  state + "/sessions/abc/data.csv", state + "/planted-link",
                                  dir.path() + "/run", dir.path() + "/run/sockets"}) {
    INFO(path);
    CHECK(statOf(path).st_uid == kNobodyUid);
    CHECK(statOf(path).st_gid == kNogroupGid);
  }
  // What the links point at, and the directories that existed before, keep their owner.
  CHECK(statOf(outside).st_uid == 0);
  CHECK(statOf(dir.path()).st_uid == 0);
}

TEST_CASE("a socket directory, a state directory or a command the account cannot reach is refused by name",
          "[supervisor]") {
  if (::geteuid() != 0) {
    WARN("not root: there is no switch to check for");
    return;
  }
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  Config config = configFor("nobody");
  config.state_dir = dir.path() + "/state";
  WorkerConfig worker;
  worker.name = "w2";
  worker.command = "/bin/true";
  worker.address.kind = Address::Kind::kUnix;
  worker.address.path = dir.path() + "/run/w2.sock";
  config.workers.push_back(worker);
  ServiceAccountCheck check = resolveServiceAccount(config, 0, 0);
  REQUIRE(check.account);

  // A socket directory that root made earlier keeps its owner: the workers could not listen there.
  std::filesystem::create_directories(dir.path() + "/run");
  std::string problem = prepareServiceDirectories(config, *check.account);
  CHECK(problem.find("worker w2: its socket directory cannot be used: " + dir.path() + "/run") == 0);
  CHECK(problem.find("mode 0755) does not let nobody write to it") != std::string::npos);
  std::filesystem::remove(dir.path() + "/run");
  CHECK(prepareServiceDirectories(config, *check.account) == "");

  // A command under a directory the account cannot search (a checkout in /root, say).
  std::filesystem::create_directories(dir.path() + "/private/bin");
  writeText(dir.path() + "/private/bin/app", "#!/bin/sh\n");
  REQUIRE(::chmod((dir.path() + "/private/bin/app").c_str(), 0755) == 0);
  REQUIRE(::chmod((dir.path() + "/private").c_str(), 0700) == 0);
  config.workers[0].command = dir.path() + "/private/bin/app";
  problem = prepareServiceDirectories(config, *check.account);
  CHECK(problem == "worker w2: its command cannot be run: " + dir.path() +
                       "/private (owner uid 0, gid 0, mode 0700) does not let nobody search it");
  REQUIRE(::chmod((dir.path() + "/private").c_str(), 0755) == 0);
  CHECK(prepareServiceDirectories(config, *check.account) == "");

  // A state directory under one the account cannot search.
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);  // searchable, so still fine
  CHECK(prepareServiceDirectories(config, *check.account) == "");
  REQUIRE(::chmod(dir.path().c_str(), 0700) == 0);
  CHECK(prepareServiceDirectories(config, *check.account).find("state_dir: " + dir.path() + " (owner uid 0") == 0);

  // Without a switch nothing is checked: the workers run as the proxy, which made what they need.
  config.user.clear();
  config.allow_root = true;
  ServiceAccountCheck same = resolveServiceAccount(config, 0, 0);
  REQUIRE(same.account);
  CHECK(prepareServiceDirectories(config, *same.account) == "");
}

TEST_CASE("without a switch the directories are made but keep their owner", "[supervisor]") {
  TempDir dir;
  Config config = configFor("", "", true);
  config.state_dir = dir.path() + "/state";
  ServiceAccountCheck check = resolveServiceAccount(config, ::geteuid(), ::getegid());
  REQUIRE(check.account);
  REQUIRE(prepareServiceDirectories(config, *check.account) == "");
  CHECK((statOf(config.state_dir).st_mode & 07777) == 0700);
  CHECK(statOf(config.state_dir).st_uid == ::geteuid());
}

TEST_CASE("dropping root switches every id and root cannot be had back", "[supervisor]") {
  if (::geteuid() != 0) {
    WARN("not root: the switch cannot be tested");
    return;
  }
  ServiceAccountCheck check = resolveServiceAccount(configFor("nobody"), 0, 0);
  REQUIRE(check.account);
  const ServiceAccount account = *check.account;
  CHECK(inChild([&]() -> std::string {
          if (std::string problem = dropPrivileges(account); !problem.empty()) return problem;
          if (::getuid() != kNobodyUid || ::geteuid() != kNobodyUid) return "uid is not nobody's";
          if (::getgid() != kNogroupGid || ::getegid() != kNogroupGid) return "gid is not nogroup's";
          if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::setgid(0) == 0) return "root came back";
          if (::getgroups(0, nullptr) != 0) return "supplementary groups kept";
          return "";
        }) == 0);
}

TEST_CASE("the hand-over gives the secret, the state and the admin socket to the account, then drops root",
          "[supervisor]") {
  if (::geteuid() != 0) {
    WARN("not root: the hand-over cannot be tested");
    return;
  }
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);  // mkdtemp's 0700 would hide the secret from the account
  Config config = configFor("nobody");
  config.state_dir = dir.path() + "/state";
  config.routing.secret_file = dir.path() + "/routing-secret";
  config.admin_socket = dir.path() + "/admin.sock";
  writeText(config.routing.secret_file, "0123456789abcdef0123456789abcdef\n");
  REQUIRE(::chmod(config.routing.secret_file.c_str(), 0600) == 0);
  ServiceAccountCheck check = resolveServiceAccount(config, 0, 0);
  REQUIRE(check.account);
  REQUIRE(prepareServiceDirectories(config, *check.account) == "");
  writeText(config.state_dir + "/worker-states.json", "{}");  // written by root after the preparation

  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, config.admin_socket.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, 1) == 0);

  const ServiceAccount account = *check.account;
  CHECK(inChild([&]() -> std::string {
          if (std::string problem = handOverToServiceAccount(config, account); !problem.empty()) return problem;
          std::ifstream secret(config.routing.secret_file);
          std::string line;
          if (!std::getline(secret, line) || line.size() != 32) return "the secret is not readable after the drop";
          return ::geteuid() == kNobodyUid ? "" : "still root";
        }) == 0);
  ::close(fd);

  CHECK((statOf(config.routing.secret_file).st_mode & 07777) == 0600);
  for (const std::string& path : {config.routing.secret_file, config.admin_socket,
                                  config.state_dir + "/worker-states.json"}) {
    INFO(path);
    CHECK(statOf(path).st_uid == kNobodyUid);
  }
}

}  // namespace
}  // namespace stickyproxy
