// Fuzz target "config": the text of a config file, read by parseConfig() (proxy/config/config.h),
// the entry that loadConfig() and every reload (SIGHUP, "reload" on the admin socket) go through.
//
// Input: the file's text.
//
// Invariants: a config exactly when there is no error; errors name the file, a line of the text
// (0 for the whole file) and come sorted by line; a config that loads holds what the rest of the
// proxy assumes (at least one worker and listener, distinct worker names). Parsing the same
// text twice gives the same answer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "proxy/config/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

std::string summary(const stickyproxy::ConfigLoadResult& result) {
  if (result.config) return "config with " + std::to_string(result.config->workers.size()) + " workers";
  std::string out;
  for (const auto& error : result.errors) out += error.toString() + "\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A directory that does not exist: relative paths resolve against it, nothing is read or made.
  const std::string path = "/nonexistent/stickyproxy-fuzz/proxy.conf";
  const ConfigLoadResult result = parseConfig(text, path);

  FUZZ_CHECK(result.config.has_value() == result.errors.empty(), summary(result));
  const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  int previous = 0;
  for (const ConfigError& error : result.errors) {
    FUZZ_CHECK(error.file == path && !error.message.empty(), error.toString());
    FUZZ_CHECK(error.line >= 0 && error.line <= lines, error.toString());
    FUZZ_CHECK(error.line >= previous, "errors out of line order:\n" + summary(result));
    previous = error.line;
    FUZZ_CHECK(!error.toString().empty(), error.message);
  }
  if (result.config) {
    const Config& config = *result.config;
    FUZZ_CHECK(!config.workers.empty(), "a config without workers");
    std::set<std::string> names;
    for (const WorkerConfig& worker : config.workers) {
      FUZZ_CHECK(!worker.name.empty() && worker.name.size() <= 32 && names.insert(worker.name).second,
                 "worker name \"" + worker.name + "\"");
      for (char c : worker.name) {
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-',
                   "worker name \"" + worker.name + "\"");
      }
    }
  }
  const ConfigLoadResult again = parseConfig(text, path);
  FUZZ_CHECK(summary(again) == summary(result), "a second parse differs:\n" + summary(again));
  return 0;
}
