#include "metrics/process_stats.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace stickyproxy;

TEST_CASE("proc stat fields are counted from the last parenthesis of the command", "[metrics]") {
  // A command name with spaces and a ')' of its own must not shift the fields.
  std::string text =
      "4242 (evil) name (x) S 1 4242 4242 0 -1 4194560 1187 0 0 0 "
      "250 75 0 0 20 0 1 0 98765 12345678 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto times = parseProcStat(text);
  REQUIRE(times);
  CHECK(times->utime_ticks == 250);
  CHECK(times->stime_ticks == 75);
  CHECK(times->start_ticks == 98765);
}

TEST_CASE("truncated or garbled proc stat text gives nothing", "[metrics]") {
  CHECK_FALSE(parseProcStat(""));
  CHECK_FALSE(parseProcStat("12 (no closing paren S 1 2 3"));
  CHECK_FALSE(parseProcStat("12 (short) S 1 2 3 4 5 6 7 8 9 10"));
  CHECK_FALSE(parseProcStat("12 (bad) S 1 4242 4242 0 -1 4194560 1187 0 0 0 x5 75 0 0 20 0 1 0 98765 1"));
}

TEST_CASE("statm gives the resident pages from its second field", "[metrics]") {
  CHECK(parseStatmResidentPages("3151 788 640 229 0 275 0\n") == 788u);
  CHECK_FALSE(parseStatmResidentPages("3151\n"));
  CHECK_FALSE(parseStatmResidentPages(""));
}

TEST_CASE("the boot time comes from the btime line of /proc/stat", "[metrics]") {
  CHECK(parseBootTime("cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 5 6\nbtime 1764100000\nprocesses 77\n") == 1764100000u);
  CHECK_FALSE(parseBootTime("cpu  1 2 3 4\nprocesses 77\n"));
}

TEST_CASE("this process's own stats are plausible", "[metrics]") {
  // Burn CPU until the counter, which moves in clock ticks (10 ms), has something to show; a
  // fresh test process may not have used a tick yet.
  std::optional<ProcessStats> stats;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  volatile uint64_t sink = 0;
  do {
    for (uint64_t i = 0; i < 5'000'000; ++i) sink = sink + i;
    stats = readProcessStats(0);
    REQUIRE(stats);
  } while (stats->cpu_seconds <= 0 && std::chrono::steady_clock::now() < give_up);
  CHECK(stats->cpu_seconds > 0);
  CHECK(stats->resident_bytes > 1024 * 1024);
  auto by_pid = readProcessStats(::getpid());
  REQUIRE(by_pid);
  CHECK(by_pid->resident_bytes > 0);

  auto start = readProcessStartTime();
  REQUIRE(start);
  double now = static_cast<double>(::time(nullptr));
  CHECK(*start <= now + 1);
  CHECK(*start > now - 24 * 3600);

  auto before = countOpenFds();
  REQUIRE(before);
  int fd = ::dup(0);
  REQUIRE(fd >= 0);
  CHECK(countOpenFds() == *before + 1);
  ::close(fd);
  CHECK(maxOpenFds().value_or(0) > 0);
}

TEST_CASE("a process that does not exist has no stats", "[metrics]") {
  // Above the kernel's pid_max limit (at most 2^22), so no process can have it.
  CHECK_FALSE(readProcessStats(1 << 23));
}
