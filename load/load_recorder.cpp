#include "load/load_recorder.h"

#include <cstdio>

namespace stickyproxy::load {

const char* failureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kSession: return "session error";
    case FailureKind::kUpload: return "upload failure";
    case FailureKind::kHttp: return "wrong answer";
    case FailureKind::kNetwork: return "no answer";
  }
  return "?";
}

double LoadRecorder::sinceStart() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

Second& LoadRecorder::now() {
  auto second = static_cast<size_t>(std::max(0.0, sinceStart()));
  second = std::min(second, kMaxSeconds - 1);
  while (timeline_.size() <= second) {
    timeline_.emplace_back();
    timeline_.back().users = users_;
  }
  return timeline_[second];
}

StepStats& LoadRecorder::stepFor(const std::string& name) {
  auto found = steps_.find(name);
  if (found != steps_.end()) return found->second;
  step_order_.push_back(name);
  return steps_[name];
}

void LoadRecorder::request(const std::string& step, double seconds, bool judged) {
  StepStats& stats = stepFor(step);
  stats.judged = judged;
  stats.latency.record(seconds);
  if (!judged) return;
  ++requests_;
  all_.record(seconds);
  Second& second = now();
  ++second.requests;
  second.latency.record(seconds);
}

void LoadRecorder::failure(const std::string& step, FailureKind kind, const std::string& user,
                           const std::string& detail, const std::string& text) {
  ++stepFor(step).errors;
  ++kind_counts_[static_cast<size_t>(kind)];
  ++now().errors;
  if (!text.empty()) ++session_texts_[text];
  if (samples_.size() < kSamples) {
    char at[32];
    std::snprintf(at, sizeof(at), "t=%.1fs ", sinceStart());
    samples_.push_back(at + user + ": " + step + ": " + detail + " [" + failureKindName(kind) + "]");
  }
}

void LoadRecorder::usersStarted(uint32_t users) {
  users_ = users;
  now().users = users;
}

uint64_t LoadRecorder::errorsTotal() const {
  uint64_t total = 0;
  for (uint64_t count : kind_counts_) total += count;
  return total;
}

Second LoadRecorder::window(size_t from, size_t to) const {
  Second sum;
  for (size_t i = from; i < to && i < timeline_.size(); ++i) {
    sum.latency.merge(timeline_[i].latency);
    sum.requests += timeline_[i].requests;
    sum.errors += timeline_[i].errors;
    sum.users = timeline_[i].users;
  }
  return sum;
}

}  // namespace stickyproxy::load
