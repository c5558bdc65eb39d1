#include "load/process_sampler.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "metrics/process_stats.h"

namespace stickyproxy::load {

namespace {

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::pair<uint64_t, uint64_t>> hostJiffies() {
  std::istringstream stat(readText("/proc/stat"));
  std::string cpu;
  stat >> cpu;
  if (cpu != "cpu") return std::nullopt;
  uint64_t fields[8] = {};
  for (uint64_t& field : fields) stat >> field;
  uint64_t total = 0;
  for (uint64_t field : fields) total += field;  // guest time is inside user and nice already
  // Not busy: idle, iowait, and niced processes (background work such as a long fuzz run
  // under `nice`, not the system under load).
  uint64_t spare = fields[3] + fields[4] + fields[1];
  return std::make_pair(total - spare, total);
}

std::vector<pid_t> childrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return children;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::istringstream list(readText(dir + "/" + entry->d_name + "/children"));
    pid_t child;
    while (list >> child) children.push_back(child);
  }
  closedir(tasks);
  return children;
}

double selfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::optional<uint64_t> listeningInode(const std::string& table, uint16_t port) {
  std::istringstream lines(readText(table));
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    uint64_t inode = 0;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    size_t colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) return inode;
  }
  return std::nullopt;
}

}  // namespace

ProcessSampler::ProcessSampler(pid_t proxy_pid)
    : proxy_pid_(proxy_pid), cores_(static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))), own_start_(selfCpuSeconds()) {
  if (cores_ < 1) cores_ = 1;
}

void ProcessSampler::track(pid_t pid, const std::string& name) {
  auto stats = readProcessStats(pid);
  if (!stats) return;
  Tracked& entry = tracked_[pid];
  if (entry.first_cpu < 0) {
    entry.name = name;
    entry.first_cpu = stats->cpu_seconds;
  }
  entry.last_cpu = stats->cpu_seconds;
  entry.peak_resident = std::max(entry.peak_resident, stats->resident_bytes);
}

void ProcessSampler::sample() {
  if (auto host = hostJiffies()) {
    if (!host_marks_.empty() && host->second > host_marks_.back().second) {
      host_samples_.push_back(100.0 * static_cast<double>(host->first - host_marks_.back().first) /
                              static_cast<double>(host->second - host_marks_.back().second));
    }
    host_marks_.push_back(*host);
  }
  if (proxy_pid_ <= 0) return;
  track(proxy_pid_, "proxy");
  for (pid_t child : childrenOf(proxy_pid_)) {
    // A child seen for the first time is named once, from its command line.
    track(child, tracked_.count(child) != 0 ? tracked_[child].name : processName(child));
  }
}

double ProcessSampler::hostAverage() const {
  return host_marks_.size() < 2 ? 0 : hostAverage(0, host_samples_.size());
}

double ProcessSampler::hostAverage(size_t from, size_t to) const {
  to = std::min(to, host_samples_.size());
  if (from >= to) return 0;
  const auto& first = host_marks_[from];
  const auto& last = host_marks_[to];
  if (last.second <= first.second) return 0;
  return 100.0 * static_cast<double>(last.first - first.first) / static_cast<double>(last.second - first.second);
}

std::vector<ProcessFigures> ProcessSampler::figures() const {
  std::map<std::string, ProcessFigures> by_name;
  for (const auto& [pid, entry] : tracked_) {
    ProcessFigures& figures = by_name[entry.name];
    figures.name = entry.name;
    figures.cpu_seconds += entry.last_cpu - entry.first_cpu;
    figures.peak_resident = std::max(figures.peak_resident, entry.peak_resident);
    ++figures.pids;
  }
  std::vector<ProcessFigures> out;
  auto proxy = by_name.find("proxy");
  if (proxy != by_name.end()) {
    out.push_back(proxy->second);
    by_name.erase(proxy);
  }
  for (auto& [name, figures] : by_name) out.push_back(figures);
  return out;
}

double ProcessSampler::ownCpuSeconds() const { return selfCpuSeconds() - own_start_; }

uint64_t ProcessSampler::ownPeakResident() const {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

std::optional<pid_t> findListeningPid(uint16_t port) {
  auto inode = listeningInode("/proc/net/tcp", port);
  if (!inode) inode = listeningInode("/proc/net/tcp6", port);
  if (!inode) return std::nullopt;
  std::string wanted = "socket:[" + std::to_string(*inode) + "]";
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  std::optional<pid_t> found;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    std::string fd_dir = std::string("/proc/") + entry->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    while (dirent* fd = readdir(fds)) {
      char target[64];
      ssize_t length = readlink((fd_dir + "/" + fd->d_name).c_str(), target, sizeof(target) - 1);
      if (length > 0 && std::string_view(target, static_cast<size_t>(length)) == wanted) {
        found = static_cast<pid_t>(std::stol(entry->d_name));
        break;
      }
    }
    closedir(fds);
    if (found) break;
  }
  closedir(proc);
  return found;
}

std::string processName(pid_t pid) {
  std::string cmdline = readText("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    args.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--name") return args[i + 1];
  }
  return "pid " + std::to_string(pid);
}

}  // namespace stickyproxy::load
