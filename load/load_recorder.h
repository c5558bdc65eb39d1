// What a load run measures: latency per step, failures by kind, the users' criteria counters,
// and a per-second timeline. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "load/latency_histogram.h"

namespace stickyproxy::load {

// How a failed step counts against the users' criteria.
enum class FailureKind {
  kSession,   // the app or the proxy lost the user's session (the users' "session errors")
  kUpload,    // an upload failed without a session error
  kHttp,      // an answer that is not what the step expects (status, content)
  kNetwork,   // no whole answer: connect error, reset, timeout
};
const char* failureKindName(FailureKind kind);

struct StepStats {
  LatencyHistogram latency;
  uint64_t errors = 0;
  bool judged = true;  // counted in the verdict's p99 (a whole chat stream is not: the app paces it)
};

struct Second {
  LatencyHistogram latency;  // judged requests completed in this second
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint32_t users = 0;  // users that had started by then
};

class LoadRecorder {
 public:
  static constexpr size_t kSamples = 12;  // failures kept in full
  static constexpr size_t kMaxSeconds = 24 * 3600;  // the timeline's ceiling

  explicit LoadRecorder(std::chrono::steady_clock::time_point started) : started_(started) {}

  void request(const std::string& step, double seconds, bool judged = true);
  // `user` and `detail` go into the samples; `text` is the session-error text found, if any.
  void failure(const std::string& step, FailureKind kind, const std::string& user, const std::string& detail,
               const std::string& text = {});
  // How many users have started so far (the timeline's user count from this second on).
  void usersStarted(uint32_t users);

  uint64_t flows_completed = 0;
  uint64_t flows_cut = 0;
  uint64_t uploads_whole = 0;
  uint64_t uploads_chunked = 0;
  uint64_t failed_uploads_whole = 0;
  uint64_t failed_uploads_chunked = 0;
  uint64_t worker_changes = 0;  // answers from another worker than the user's earlier ones
  uint64_t resent = 0;
  uint64_t reasked = 0;

  uint64_t requests() const { return requests_; }
  uint64_t errors(FailureKind kind) const { return kind_counts_[static_cast<size_t>(kind)]; }
  uint64_t errorsTotal() const;
  const std::map<std::string, uint64_t>& sessionTexts() const { return session_texts_; }
  const std::vector<std::string>& stepOrder() const { return step_order_; }
  const StepStats& step(const std::string& name) const { return steps_.at(name); }
  const std::vector<std::string>& samples() const { return samples_; }
  const std::vector<Second>& timeline() const { return timeline_; }
  // Every judged request's latency.
  const LatencyHistogram& all() const { return all_; }
  // Judged latencies and errors in whole seconds [from, to) of the timeline.
  Second window(size_t from, size_t to) const;
  double sinceStart() const;

 private:
  StepStats& stepFor(const std::string& name);
  Second& now();

  std::chrono::steady_clock::time_point started_;
  std::map<std::string, StepStats> steps_;
  std::vector<std::string> step_order_;
  LatencyHistogram all_;
  uint64_t requests_ = 0;
  uint64_t kind_counts_[4] = {};
  std::map<std::string, uint64_t> session_texts_;
  std::vector<std::string> samples_;
  std::vector<Second> timeline_;
  uint32_t users_ = 0;
};

}  // namespace stickyproxy::load
