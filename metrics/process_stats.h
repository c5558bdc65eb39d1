// CPU time, resident memory and descriptors of a process, read from /proc (Linux).
//
// Reading costs a few small file reads per process, cheap enough for every scrape. Nothing here
// throws: a process that is gone or a file that does not parse gives std::nullopt.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace stickyproxy {

// The fields of /proc/<pid>/stat the metrics use, in clock ticks (sysconf(_SC_CLK_TCK)).
struct ProcStatTimes {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and ')', so fields are counted from the last ')'.
std::optional<ProcStatTimes> parseProcStat(std::string_view text);

// Parses the text of /proc/<pid>/statm: the resident set in pages (its second field).
std::optional<uint64_t> parseStatmResidentPages(std::string_view text);

// Parses the text of /proc/stat: the boot time in seconds since the epoch (the "btime" line).
std::optional<uint64_t> parseBootTime(std::string_view text);

struct ProcessStats {
  double cpu_seconds = 0;      // user + system
  uint64_t resident_bytes = 0;
};

// CPU seconds and resident memory of `pid` (0: this process), from /proc/<pid>/stat and
// /proc/<pid>/statm.
std::optional<ProcessStats> readProcessStats(pid_t pid);

// This process's start time in seconds since the epoch (boot time + start ticks).
std::optional<double> readProcessStartTime();

// How many descriptors this process has open (entries of /proc/self/fd, less the one used to
// list them).
std::optional<uint64_t> countOpenFds();

// This process's soft limit on descriptors (RLIMIT_NOFILE).
std::optional<uint64_t> maxOpenFds();

}  // namespace stickyproxy
