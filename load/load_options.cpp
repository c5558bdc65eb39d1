#include "load/load_options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace stickyproxy::load {

namespace {

bool parseNumber(std::string_view text, double min, double max, double* value) {
  std::string copy(text);
  char* end = nullptr;
  double parsed = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(parsed) || parsed < min || parsed > max) {
    return false;
  }
  *value = parsed;
  return true;
}

bool parseCount(std::string_view text, uint64_t min, uint64_t max, uint64_t* value) {
  uint64_t parsed = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (ec != std::errc() || end != text.data() + text.size() || parsed < min || parsed > max) return false;
  *value = parsed;
  return true;
}

}  // namespace

const char* loadUsage() {
  return "usage: stickyproxy-load --target HOST:PORT --data DIR [options]\n"
         "  plays simulated users through the bundled app's whole flow and judges the users' criteria\n"
         "  --target HOST:PORT     the proxy (IP literal; e.g. 127.0.0.1:8080)\n"
         "  --data DIR             wards.csv and wards_shapefile.zip (stickyproxy-gendata --out DIR)\n"
         "  --chunked-data DIR     the files every 5th user uploads instead (in 2 MiB chunks when over 5 MiB)\n"
         "  --users N              users at once (default 50; with --find-capacity: the first step)\n"
         "  --duration S           seconds until users start no more steps (default 120)\n"
         "  --ramp S               seconds over which users start (default 10)\n"
         "  --think-min S, --think-max S   think time between two clicks (default 0.3 and 1.2)\n"
         "  --seed N               random seed (default 7)\n"
         "  --timeout S            bound on one answer (default 60)\n"
         "  --proxy-pid PID        the proxy's pid (default: the process listening on the target port)\n"
         "  --no-gzip              do not send Accept-Encoding: gzip\n"
         "  --proxy-cookie NAME    the proxy's routing cookie (default stickyproxy)\n"
         "  --json FILE, --svg FILE   the figures as JSON, latency and throughput over time as SVG\n"
         "  --find-capacity        add --step-users (50) users every --step-seconds (60) while the last step\n"
         "                         held (p99 under --goal-p99, no error), up to --max-users (3000)\n"
         "  --goal-p99 S, --goal-cpu PERCENT   the criteria (default 3 s and 80%)\n"
         "exit status: 0 when every criterion passed, 1 when one failed, 2 on a usage or setup problem\n";
}

std::optional<LoadOptions> parseLoadOptions(int argc, char** argv, std::string* error) {
  LoadOptions options;
  error->clear();
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") return std::nullopt;
    if (flag == "--no-gzip") {
      options.gzip = false;
      continue;
    }
    if (flag == "--find-capacity") {
      options.find_capacity = true;
      continue;
    }
    if (i + 1 >= argc) {
      *error = std::string(flag) + " needs a value (or is unknown)";
      return std::nullopt;
    }
    std::string_view value = argv[++i];
    uint64_t count = 0;
    bool ok = true;
    if (flag == "--target") {
      auto endpoint = Endpoint::parse(value);
      ok = endpoint && endpoint->kind == Endpoint::Kind::kTcp;
      if (ok) options.target = *endpoint;
      options.target_text = value;
    } else if (flag == "--data") {
      options.data_dir = value;
    } else if (flag == "--chunked-data") {
      options.chunked_data_dir = value;
    } else if (flag == "--users") {
      ok = parseCount(value, 1, 100000, &count);
      options.users = static_cast<uint32_t>(count);
    } else if (flag == "--duration") {
      ok = parseNumber(value, 1, 86400, &options.duration);
    } else if (flag == "--ramp") {
      ok = parseNumber(value, 0, 3600, &options.ramp);
    } else if (flag == "--think-min") {
      ok = parseNumber(value, 0, 3600, &options.think_min);
    } else if (flag == "--think-max") {
      ok = parseNumber(value, 0, 3600, &options.think_max);
    } else if (flag == "--seed") {
      ok = parseCount(value, 0, UINT64_MAX, &options.seed);
    } else if (flag == "--timeout") {
      ok = parseNumber(value, 0.1, 3600, &options.request_timeout);
    } else if (flag == "--proxy-pid") {
      ok = parseCount(value, 1, 1u << 30, &count);
      options.proxy_pid = static_cast<int>(count);
    } else if (flag == "--proxy-cookie") {
      options.proxy_cookie = value;
      ok = !value.empty();
    } else if (flag == "--json") {
      options.json_path = value;
    } else if (flag == "--svg") {
      options.svg_path = value;
    } else if (flag == "--step-users") {
      ok = parseCount(value, 1, 100000, &count);
      options.step_users = static_cast<uint32_t>(count);
    } else if (flag == "--step-seconds") {
      ok = parseNumber(value, 5, 86400, &options.step_seconds);
    } else if (flag == "--max-users") {
      ok = parseCount(value, 1, 100000, &count);
      options.max_users = static_cast<uint32_t>(count);
    } else if (flag == "--goal-p99") {
      ok = parseNumber(value, 0.001, 3600, &options.goal_p99);
    } else if (flag == "--goal-cpu") {
      ok = parseNumber(value, 1, 100, &options.goal_cpu);
    } else {
      *error = "unknown option " + std::string(flag);
      return std::nullopt;
    }
    if (!ok) {
      *error = "bad value for " + std::string(flag) + ": " + std::string(value);
      return std::nullopt;
    }
  }
  if (options.target_text.empty()) *error = "--target is required";
  else if (options.data_dir.empty()) *error = "--data is required";
  else if (options.think_min > options.think_max) *error = "--think-min must not exceed --think-max";
  else if (options.find_capacity && options.ramp >= options.step_seconds) *error = "--ramp must be shorter than --step-seconds";
  else if (options.find_capacity && options.max_users < options.users) *error = "--max-users must be at least --users";
  if (!error->empty()) return std::nullopt;
  return options;
}

}  // namespace stickyproxy::load
