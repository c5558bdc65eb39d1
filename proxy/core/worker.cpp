#include "proxy/core/worker.h"

namespace stickyproxy {

const char* workerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting: return "starting";
    case WorkerState::kReady: return "ready";
    case WorkerState::kDraining: return "draining";
    case WorkerState::kDrained: return "drained";
    case WorkerState::kDown: return "down";
  }
  return "unknown";
}

Endpoint endpointFor(const Address& address) {
  if (address.kind == Address::Kind::kUnix) return Endpoint::unixPath(address.path);
  // Config validation accepted the address, so it parses.
  return Endpoint::parse(address.toString()).value_or(Endpoint());
}

PoolOptions Worker::poolOptionsFor(const Config& config) {
  PoolOptions options;
  options.max_idle = config.limits.upstream_idle_per_worker;
  options.idle_timeout = config.timeouts.upstream_idle;
  options.connect_timeout = config.timeouts.upstream_connect;
  options.write_high_water = config.limits.write_buffer_high;
  return options;
}

Worker::Worker(uv_loop_t* loop, const WorkerConfig& config, const Config& proxy_config)
    : config_(config),
      endpoint_(endpointFor(config.address)),
      state_since_(std::chrono::steady_clock::now()),
      pool_(loop, endpoint_, poolOptionsFor(proxy_config)),
      admission_(proxy_config.limits.worker_max_in_flight, proxy_config.limits.worker_queue) {}

void Worker::setState(WorkerState state) {
  if (state == state_) return;
  state_ = state;
  state_since_ = std::chrono::steady_clock::now();
  consecutive_successes_ = 0;
  consecutive_failures_ = 0;
  if (!up()) pool_.closeIdle();
}

bool Worker::observeSuccess(uint32_t rise) {
  consecutive_failures_ = 0;
  ++consecutive_successes_;
  if (up()) return false;
  // A worker we just started needs one good answer; one that fell needs `rise` in a row.
  uint32_t needed = state_ == WorkerState::kStarting ? 1 : rise;
  if (consecutive_successes_ < needed) return false;
  setState(WorkerState::kReady);
  return true;
}

bool Worker::observeFailure(uint32_t fall) {
  consecutive_successes_ = 0;
  ++consecutive_failures_;
  if (!up() || consecutive_failures_ < fall) return false;
  setState(WorkerState::kDown);
  return true;
}

void Worker::applyConfig(const WorkerConfig& config, const Config& proxy_config) {
  pool_.setOptions(poolOptionsFor(proxy_config));
  admission_.setLimits(proxy_config.limits.worker_max_in_flight, proxy_config.limits.worker_queue);
  bool process_changed = config.supervised() && (config.command != config_.command || config.args != config_.args ||
                                                 config.env != config_.env);
  if (config.address == config_.address && !process_changed) {
    config_ = config;
    pending_.reset();
  } else {
    pending_ = config;
  }
}

std::optional<Endpoint> Worker::pendingEndpoint() const {
  if (!pending_ || pending_->address == config_.address) return std::nullopt;
  return endpointFor(pending_->address);
}

void Worker::commitPending() {
  if (!pending_) return;
  bool address_changed = !(pending_->address == config_.address);
  config_ = std::move(*pending_);
  pending_.reset();
  if (address_changed) {
    endpoint_ = endpointFor(config_.address);
    pool_.setEndpoint(endpoint_);
  }
}

}  // namespace stickyproxy
