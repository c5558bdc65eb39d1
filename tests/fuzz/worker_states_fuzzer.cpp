// Fuzz target "worker_states": the admin's worker-states file (<state_dir>/worker-states.json,
// the workers drained by the admin), read at start by RoutingState::loadDrainedWorkers()
// (proxy/core/routing_state.h).
//
// Input: the file's bytes.
//
// Invariants: only names of configured workers come back (a corrupt file is ignored, never
// fatal); and what saveDrainedWorkers() then writes loads back to the same set.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "proxy/core/routing_state.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/proxy/net/loop_test_support.h"

namespace stickyproxy::fuzz {
namespace {

struct Fixture {
  Fixture() {
    for (const char* name : {"w1", "w2", "w-3"}) {
      WorkerConfig worker;
      worker.name = name;
      worker.address.host = "127.0.0.1";
      worker.address.port = 1;
      config.workers.push_back(worker);
    }
    config.state_dir = scratchDir();
  }
  testing::TestLoop loop;
  Config config;
  RoutingState state{loop.get(), config};
};

Fixture& fixture() {
  static Fixture* instance = new Fixture;  // lives until exit, with its loop
  return *instance;
}

std::string describe(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += " " + name;
  return out;
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  Fixture& f = fixture();
  writeFile(f.config.state_dir + "/worker-states.json", std::string_view(reinterpret_cast<const char*>(data), size));
  std::set<std::string> names;
  {
    QuietStderr quiet;  // a corrupt file is logged
    names = f.state.loadDrainedWorkers();
  }
  for (const std::string& name : names) FUZZ_CHECK(f.config.findWorker(name) != nullptr, "unknown worker " + name);
  std::set<std::string> again;
  {
    QuietStderr quiet;
    f.state.saveDrainedWorkers(names);
    again = f.state.loadDrainedWorkers();
  }
  FUZZ_CHECK(again == names, "loaded" + describe(names) + ", saved and loaded again" + describe(again));
  return 0;
}
