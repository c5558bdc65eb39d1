// Fuzz target "state_file": the moved-sessions state file that the proxy reads at start,
// SessionTable::load() (proxy/routing/session_table.h), into a table that already holds entries.
//
// Input: the file's bytes.
//
// Invariants: a refused file leaves the table exactly as it was; a loaded one keeps the table
// under its ceiling and keeps the entries it held; and what the table then saves loads, into an
// empty table, to the same moved entries (save and load round-trip).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/routing/session_table.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

using std::chrono::hours;

constexpr size_t kCeiling = 16;
const WallTime kNow{std::chrono::milliseconds(1'700'000'000'000)};

std::string describe(const MovedEntries& entries) {
  std::string out;
  for (const auto& [key, entry] : entries) {
    out += std::to_string(key) + " " + entry.worker + " <- " + entry.previous_worker +
           (entry.announce_previous ? " announce" : "") + " seen " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(entry.last_seen.time_since_epoch()).count()) +
           " moved " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(entry.moved_at.time_since_epoch()).count()) + "\n";
  }
  return out;
}

MovedEntries sorted(MovedEntries entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return entries;
}

bool sameEntries(const MovedEntries& a, const MovedEntries& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const SessionEntry& x = a[i].second;
    const SessionEntry& y = b[i].second;
    if (a[i].first != b[i].first || x.worker != y.worker || x.previous_worker != y.previous_worker ||
        x.moved != y.moved || x.announce_previous != y.announce_previous || x.last_seen != y.last_seen ||
        x.moved_at != y.moved_at) {
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  const std::string path = scratchDir() + "/moved-sessions.json";
  const std::string saved = scratchDir() + "/saved.json";
  writeFile(path, std::string_view(reinterpret_cast<const char*>(data), size));

  SessionTable table(hours(1), hours(24 * 7), kCeiling);
  table.touch(1, "w1", kNow);
  table.move(2, "w1", "w2", kNow);
  const MovedEntries before = sorted(table.movedEntries());
  const size_t size_before = table.size();

  std::string error;
  if (!table.load(path, kNow, &error)) {
    FUZZ_CHECK(!error.empty(), "refused without a message");
    FUZZ_CHECK(table.size() == size_before && sameEntries(sorted(table.movedEntries()), before),
               "a refused file changed the table (" + error + ")");
    return 0;
  }
  FUZZ_CHECK(table.size() <= kCeiling, std::to_string(table.size()) + " entries");
  FUZZ_CHECK(table.find(1).has_value() && table.find(2).has_value() && table.find(2)->worker == "w2",
             "the table's own entries were replaced");
  const MovedEntries loaded = sorted(table.movedEntries());
  FUZZ_CHECK(table.movedCount() == loaded.size(), "movedCount() " + std::to_string(table.movedCount()));

  FUZZ_CHECK(table.save(saved, &error), error);
  SessionTable again(hours(1), hours(24 * 7), kCeiling);
  FUZZ_CHECK(again.load(saved, kNow, &error), "the saved file is refused: " + error);
  const MovedEntries reloaded = sorted(again.movedEntries());
  FUZZ_CHECK(sameEntries(loaded, reloaded), "loaded:\n" + describe(loaded) + "saved and loaded again:\n" + describe(reloaded));
  FUZZ_CHECK(again.movedPerWorker() == table.movedPerWorker(), "moved counts per worker differ");
  return 0;
}
