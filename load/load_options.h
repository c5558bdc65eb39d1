// stickyproxy-load's command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "proxy/net/endpoint.h"

namespace stickyproxy::load {

struct LoadOptions {
  Endpoint target;
  std::string target_text;
  std::string data_dir;
  std::string chunked_data_dir;  // every 5th user uploads these (in chunks when over 5 MiB)
  uint32_t users = 50;
  double duration = 120;  // seconds from the first user's start until users stop starting steps
  double ramp = 10;       // seconds over which the users (or each capacity step's new users) start
  double think_min = 0.3;
  double think_max = 1.2;
  uint64_t seed = 7;
  double request_timeout = 60;
  int proxy_pid = 0;  // 0: found from the target's listening socket
  bool gzip = true;
  std::string proxy_cookie = "stickyproxy";
  std::string json_path;
  std::string svg_path;
  // --find-capacity: start with `users`, add `step_users` every `step_seconds` while the last step
  // held (p99 under goal_p99, no error), up to max_users.
  bool find_capacity = false;
  uint32_t step_users = 50;
  double step_seconds = 60;
  uint32_t max_users = 3000;
  double goal_p99 = 3.0;
  double goal_cpu = 80.0;
};

// Parses argv; nullopt with `error` set (empty for --help) when the run should not start.
std::optional<LoadOptions> parseLoadOptions(int argc, char** argv, std::string* error);
const char* loadUsage();

}  // namespace stickyproxy::load
