// What stickyproxy-load prints and writes when a run is over: tables, the users' criteria as
// PASS/FAIL lines, a JSON file and an SVG chart of latency and throughput over time.
#pragma once

#include <cstdio>
#include <string>

#include "load/load_options.h"
#include "load/load_run.h"
#include "load/process_sampler.h"

namespace stickyproxy::load {

class LoadReport {
 public:
  LoadReport(const LoadOptions& options, const LoadRun& run, const ProcessSampler& sampler, size_t wards);

  // Prints everything to `out`; true when every criterion passed.
  bool print(FILE* out) const;
  std::string json() const;
  std::string svg() const;

 private:
  struct Verdict {
    std::string goal;
    std::string figure;
    bool passed;
  };
  // The level the criteria judge: a plain run's only one, or the last that held.
  const Level* judgedLevel() const;
  std::vector<Verdict> verdicts() const;
  uint32_t capacity() const;

  const LoadOptions& options_;
  const LoadRun& run_;
  const ProcessSampler& sampler_;
  size_t wards_;
};

}  // namespace stickyproxy::load
