// Fuzz target "handover": the JSON a running proxy hands its successor in a binary upgrade
// (parseHandover, proxy/core/handover.h), read by the successor from the admin socket.
//
// Input: the JSON text; it comes with four stand-in descriptors (100..103, never used as files).
//
// Invariants: a refused handover leaves the state untouched; an accepted one names only the
// descriptors given, each at most once, workers with a pid and a name, and survives
// handoverJson() and parseHandover() again unchanged.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "proxy/core/handover.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  const std::vector<int> fds = {100, 101, 102, 103};
  HandoverState state;
  std::string error;
  std::string json(reinterpret_cast<const char*>(data), size);
  if (!parseHandover(json, fds, &state, &error)) {
    FUZZ_CHECK(state.sockets.empty() && state.workers.empty() && state.pid == 0, "a refused handover changed the state");
    FUZZ_CHECK(!error.empty(), "refused without a reason");
    return 0;
  }
  std::set<int> seen;
  for (const HandedSocket& socket : state.sockets) {
    FUZZ_CHECK(socket.fd >= 100 && socket.fd <= 103, "a descriptor that was not given: " + std::to_string(socket.fd));
    FUZZ_CHECK(seen.insert(socket.fd).second, "a descriptor named twice");
  }
  for (const HandedWorker& worker : state.workers) FUZZ_CHECK(worker.pid > 0, "worker " + worker.name + " without a pid");
  FUZZ_CHECK(state.pid > 0, "no predecessor pid");
  std::vector<int> sent;
  std::string again = handoverJson(state, &sent);
  HandoverState reparsed;
  FUZZ_CHECK(parseHandover(again, sent, &reparsed, &error), "its own JSON refused: " + error);
  FUZZ_CHECK(reparsed.pid == state.pid && reparsed.version == state.version &&
                 reparsed.sockets.size() == state.sockets.size() && reparsed.workers.size() == state.workers.size(),
             "changed by a round trip");
  for (size_t i = 0; i < state.workers.size(); ++i) {
    FUZZ_CHECK(reparsed.workers[i].name == state.workers[i].name && reparsed.workers[i].argv == state.workers[i].argv &&
                   reparsed.workers[i].pid == state.workers[i].pid,
               "worker changed by a round trip");
  }
  for (size_t i = 0; i < state.sockets.size(); ++i) {
    FUZZ_CHECK(reparsed.sockets[i].endpoint == state.sockets[i].endpoint && reparsed.sockets[i].role == state.sockets[i].role,
               "socket changed by a round trip");
  }
  return 0;
}
