// A whole load run on one libuv loop: starts the users on schedule, samples CPU and memory every
// second, stops the users at the end (or, with --find-capacity, adds users step by step while
// each step holds), and stops the loop when the last user is done.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "load/app_dataset.h"
#include "load/app_user.h"
#include "load/load_options.h"
#include "load/load_recorder.h"
#include "load/process_sampler.h"
#include "proxy/net/timer.h"

namespace stickyproxy::load {

// One step of --find-capacity (or the whole of a plain run): its judged window, after its users
// had all started.
struct Level {
  uint32_t users = 0;
  size_t from = 0;  // seconds since the start, [from, to)
  size_t to = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  double p50 = 0;
  double p99 = 0;
  double host_cpu = 0;
  bool held = false;
  std::string why;  // what failed, when it did not hold
};

class LoadRun {
 public:
  LoadRun(uv_loop_t* loop, const LoadOptions& options, const AppDataset* data, const AppDataset* chunked_data,
          ProcessSampler* sampler);
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  // Schedules the run; uv_run the loop until it returns.
  void start();

  const LoadRecorder& recorder() const { return recorder_; }
  const std::vector<std::unique_ptr<AppUser>>& users() const { return users_; }
  const std::vector<Level>& levels() const { return levels_; }
  // Seconds from the first user's start to the end of the run.
  double measured() const { return measured_; }
  // Users still waiting for an answer when the run had to end.
  size_t stuck() const { return stuck_; }

 private:
  void addUsers(uint32_t count);
  void tick();
  void closeLevel(size_t now);
  void stopUsers();
  void finish();

  uv_loop_t* loop_;
  const LoadOptions& options_;
  const AppDataset* data_;
  const AppDataset* chunked_data_;
  ProcessSampler* sampler_;
  UserSettings settings_;
  LoadRecorder recorder_;
  Timer ticker_;
  std::vector<std::unique_ptr<AppUser>> users_;
  std::vector<Level> levels_;
  size_t level_start_ = 0;
  bool stopping_ = false;
  double stopped_at_ = 0;
  double measured_ = 0;
  size_t stuck_ = 0;
};

}  // namespace stickyproxy::load
