// CPU and memory of the system under load, sampled once a second from /proc: the host's busy
// share, the proxy process, each of its children (the workers, by their --name argument), and
// this process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace stickyproxy::load {

struct ProcessFigures {
  std::string name;
  double cpu_seconds = 0;         // used while sampled (every pid that carried the name)
  uint64_t peak_resident = 0;     // largest sampled resident set, bytes
  uint32_t pids = 0;              // processes seen under the name (more than one: it restarted)
};

class ProcessSampler {
 public:
  // `proxy_pid` 0: only the host and this process are sampled.
  explicit ProcessSampler(pid_t proxy_pid);

  // Takes one sample; call once a second.
  void sample();
  // Host CPU busy percent per sample interval. Time of niced processes (nice > 0) counts as
  // spare: the system under load runs at the default priority, background work may not.
  const std::vector<double>& hostSamples() const { return host_samples_; }
  // Busy percent over everything sampled, from the first sample to the last.
  double hostAverage() const;
  // Host busy percent between samples `from` and `to` (indexes into hostSamples()).
  double hostAverage(size_t from, size_t to) const;
  // The proxy first, then its children by name.
  std::vector<ProcessFigures> figures() const;
  // This process's CPU seconds since construction.
  double ownCpuSeconds() const;
  uint64_t ownPeakResident() const;
  int cores() const { return cores_; }

 private:
  struct Tracked {
    std::string name;
    double first_cpu = -1;
    double last_cpu = 0;
    uint64_t peak_resident = 0;
  };
  void track(pid_t pid, const std::string& name);

  pid_t proxy_pid_;
  int cores_;
  std::vector<std::pair<uint64_t, uint64_t>> host_marks_;  // (busy, total) jiffies per sample
  std::vector<double> host_samples_;
  std::map<pid_t, Tracked> tracked_;
  double own_start_;
};

// The pid of the process holding a TCP socket listening on `port` (any address), from
// /proc/net/tcp{,6} and /proc/*/fd; nullopt when none is visible to this user.
std::optional<pid_t> findListeningPid(uint16_t port);
// The value after `--name` in the command line of `pid`, or "pid <pid>".
std::string processName(pid_t pid);

}  // namespace stickyproxy::load
