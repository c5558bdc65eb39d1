#include "load/load_run.h"

#include <cmath>

namespace stickyproxy::load {

namespace {

constexpr uint32_t kChunkedEvery = 5;  // every 5th user uploads the chunked data, as app_users.py

}  // namespace

LoadRun::LoadRun(uv_loop_t* loop, const LoadOptions& options, const AppDataset* data, const AppDataset* chunked_data,
                 ProcessSampler* sampler)
    : loop_(loop),
      options_(options),
      data_(data),
      chunked_data_(chunked_data),
      sampler_(sampler),
      recorder_(std::chrono::steady_clock::now()),
      ticker_(loop) {
  settings_.agent.target = options.target;
  settings_.agent.host_header = options.target_text;
  settings_.agent.response_timeout = std::chrono::milliseconds(static_cast<int64_t>(options.request_timeout * 1000));
  settings_.agent.accept_gzip = options.gzip;
  settings_.think_min = options.think_min;
  settings_.think_max = options.think_max;
  settings_.seed = options.seed;
  settings_.proxy_cookie = options.proxy_cookie;
}

void LoadRun::start() {
  sampler_->sample();
  addUsers(options_.users);
  ticker_.startRepeating(std::chrono::milliseconds(1000), [this] { tick(); });
}

void LoadRun::addUsers(uint32_t count) {
  uint32_t first = static_cast<uint32_t>(users_.size());
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t index = first + i;
    bool chunked = chunked_data_ != nullptr && (index + 1) % kChunkedEvery == 0;
    auto user = std::make_unique<AppUser>(loop_, index, settings_, chunked ? chunked_data_ : data_, chunked, &recorder_);
    auto delay = std::chrono::milliseconds(static_cast<int64_t>(options_.ramp * 1000 * i / count));
    user->start(delay);
    users_.push_back(std::move(user));
  }
}

void LoadRun::tick() {
  sampler_->sample();
  uint32_t started = 0;
  for (const auto& user : users_) started += user->started() ? 1 : 0;
  recorder_.usersStarted(started);
  double now = recorder_.sinceStart();
  if (stopping_) {
    bool done = true;
    for (const auto& user : users_) done = done && user->finished();
    if (done || now > stopped_at_ + options_.request_timeout + 5) finish();
    return;
  }
  auto second = static_cast<size_t>(now);
  if (options_.find_capacity) {
    if (now >= static_cast<double>(level_start_) + options_.step_seconds) closeLevel(second);
  } else if (now >= options_.duration) {
    closeLevel(second);
  }
}

void LoadRun::closeLevel(size_t now) {
  Level level;
  level.users = static_cast<uint32_t>(users_.size());
  level.from = level_start_ + static_cast<size_t>(std::ceil(options_.ramp));
  level.to = now;
  Second window = recorder_.window(level.from, level.to);
  level.requests = window.requests;
  level.errors = window.errors;
  level.p50 = window.latency.quantile(0.50);
  level.p99 = window.latency.quantile(0.99);
  level.host_cpu = sampler_->hostAverage(level.from, level.to);
  if (level.errors > 0) {
    level.why = std::to_string(level.errors) + " failed steps";
  } else if (level.p99 >= options_.goal_p99) {
    level.why = "p99 at or over the goal";
  } else if (level.requests == 0) {
    level.why = "no request completed";
  }
  level.held = level.why.empty();
  levels_.push_back(level);
  level_start_ = now;
  uint32_t next = level.users + options_.step_users;
  if (options_.find_capacity && level.held && next <= options_.max_users) {
    addUsers(options_.step_users);
    return;
  }
  stopUsers();
}

void LoadRun::stopUsers() {
  stopping_ = true;
  stopped_at_ = recorder_.sinceStart();
  measured_ = stopped_at_;
  for (auto& user : users_) user->stop();
}

void LoadRun::finish() {
  ticker_.stop();
  for (auto& user : users_) {
    if (!user->finished()) {
      ++stuck_;
      user->abort();
    }
  }
  uv_stop(loop_);
}

}  // namespace stickyproxy::load
