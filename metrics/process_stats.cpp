#include "metrics/process_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <string>

namespace stickyproxy {

namespace {

// /proc files report a size of 0, so read until EOF. The files read here are well under 1 KiB
// (/proc/stat grows with the CPU count: a few KiB).
constexpr size_t kMaxProcFile = 64 * 1024;

std::optional<std::string> readProcFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  while (text.size() < kMaxProcFile) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string procPath(pid_t pid, const char* file) {
  return pid == 0 ? std::string("/proc/self/") + file : "/proc/" + std::to_string(pid) + "/" + file;
}

// Splits off the next space-separated field of `text`.
std::string_view nextField(std::string_view& text) {
  size_t start = text.find_first_not_of(" \n");
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  size_t end = text.find_first_of(" \n");
  std::string_view field = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  return field;
}

std::optional<uint64_t> toUnsigned(std::string_view field) {
  uint64_t value = 0;
  if (field.empty()) return std::nullopt;
  auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (error != std::errc() || end != field.data() + field.size()) return std::nullopt;
  return value;
}

double ticksToSeconds(uint64_t ticks) {
  static const long kTicksPerSecond = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(ticks) / static_cast<double>(kTicksPerSecond > 0 ? kTicksPerSecond : 100);
}

}  // namespace

std::optional<ProcStatTimes> parseProcStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  // After the command come field 3 (state) onwards: utime is field 14, stime 15, starttime 22.
  ProcStatTimes times;
  for (int field = 3; field <= 22; ++field) {
    std::string_view value = nextField(rest);
    if (value.empty()) return std::nullopt;
    if (field != 14 && field != 15 && field != 22) continue;
    auto number = toUnsigned(value);
    if (!number) return std::nullopt;
    if (field == 14) times.utime_ticks = *number;
    if (field == 15) times.stime_ticks = *number;
    if (field == 22) times.start_ticks = *number;
  }
  return times;
}

std::optional<uint64_t> parseStatmResidentPages(std::string_view text) {
  nextField(text);  // total program size
  return toUnsigned(nextField(text));
}

std::optional<uint64_t> parseBootTime(std::string_view text) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.substr(0, 6) != "btime ") continue;
    std::string_view rest = line.substr(6);
    return toUnsigned(nextField(rest));
  }
  return std::nullopt;
}

std::optional<ProcessStats> readProcessStats(pid_t pid) {
  auto stat_text = readProcFile(procPath(pid, "stat"));
  auto statm_text = readProcFile(procPath(pid, "statm"));
  if (!stat_text || !statm_text) return std::nullopt;
  auto times = parseProcStat(*stat_text);
  auto pages = parseStatmResidentPages(*statm_text);
  if (!times || !pages) return std::nullopt;
  static const long kPageSize = ::sysconf(_SC_PAGESIZE);
  ProcessStats stats;
  stats.cpu_seconds = ticksToSeconds(times->utime_ticks + times->stime_ticks);
  stats.resident_bytes = *pages * static_cast<uint64_t>(kPageSize > 0 ? kPageSize : 4096);
  return stats;
}

std::optional<double> readProcessStartTime() {
  auto stat_text = readProcFile("/proc/self/stat");
  auto system_text = readProcFile("/proc/stat");
  if (!stat_text || !system_text) return std::nullopt;
  auto times = parseProcStat(*stat_text);
  auto boot = parseBootTime(*system_text);
  if (!times || !boot) return std::nullopt;
  return static_cast<double>(*boot) + ticksToSeconds(times->start_ticks);
}

std::optional<uint64_t> countOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  uint64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count > 0 ? count - 1 : 0;
}

std::optional<uint64_t> maxOpenFds() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nullopt;
  if (limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace stickyproxy
