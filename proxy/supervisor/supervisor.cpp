#include "proxy/supervisor/supervisor.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "proxy/net/loop_context.h"
#include "proxy/supervisor/service_account.h"

namespace stickyproxy {

Supervisor::Supervisor(uv_loop_t* loop, const Config& config, Callbacks callbacks)
    : loop_(loop),
      state_dir_(config.state_dir),
      supervisor_(config.supervisor),
      callbacks_(std::move(callbacks)) {
  // main() refused to start when the account cannot be resolved; then workers keep our ids.
  ServiceAccountCheck check = resolveServiceAccount(config, ::geteuid(), ::getegid());
  if (check.account && check.account->switch_needed) {
    run_as_ = WorkerProcess::RunAs{check.account->uid, check.account->gid};
  }
  for (const WorkerConfig& worker : config.workers) {
    if (worker.supervised()) workers_.push_back(makeWorker(worker));
  }
}

Supervisor::~Supervisor() { *alive_ = false; }

void Supervisor::startAll() {
  started_ = true;
  // By name, not by iterator: a callback that start() runs may reload the config or
  // destroy this object.
  std::shared_ptr<bool> alive = alive_;
  std::vector<std::string> names;
  for (const auto& worker : workers_) names.push_back(worker->name());
  for (const std::string& name : names) {
    if (WorkerProcess* worker = find(name)) worker->start();
    if (!*alive || !started_) return;
  }
}

bool Supervisor::adopt(const std::string& name, int pid) {
  WorkerProcess* worker = find(name);
  return worker != nullptr && worker->adopt(pid);
}

void Supervisor::releaseAll() {
  started_ = false;
  for (const auto& worker : workers_) worker->release();
  for (const auto& worker : retiring_) worker->release();
}

void Supervisor::stopAll(std::function<void()> done) {
  started_ = false;
  // One count per worker plus one held until every stop() has been issued, so that workers
  // that are already down cannot finish the count early.
  auto remaining = std::make_shared<size_t>(1);
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  auto one_done = [remaining, finished] {
    if (--*remaining != 0) return;
    std::function<void()> callback = std::move(*finished);
    if (callback) callback();
  };
  std::vector<WorkerProcess*> all = workers();
  for (const auto& worker : retiring_) all.push_back(worker.get());
  *remaining += all.size();
  // stop() runs no callback but `done`, and one_done only counts until the last call below.
  for (WorkerProcess* worker : all) worker->stop(one_done);
  one_done();
}

WorkerProcess* Supervisor::find(const std::string& name) {
  for (const auto& worker : workers_) {
    if (worker->name() == name) return worker.get();
  }
  return nullptr;
}

const WorkerProcess* Supervisor::find(const std::string& name) const {
  for (const auto& worker : workers_) {
    if (worker->name() == name) return worker.get();
  }
  return nullptr;
}

std::vector<WorkerProcess*> Supervisor::workers() const {
  std::vector<WorkerProcess*> all;
  all.reserve(workers_.size());
  for (const auto& worker : workers_) all.push_back(worker.get());
  return all;
}

void Supervisor::applyConfig(const Config& config) {
  state_dir_ = config.state_dir;
  supervisor_ = config.supervisor;

  std::vector<std::unique_ptr<WorkerProcess>> previous = std::move(workers_);
  workers_.clear();
  std::vector<std::string> added;
  for (const WorkerConfig& worker_config : config.workers) {
    if (!worker_config.supervised()) continue;
    auto same_name = std::find_if(previous.begin(), previous.end(), [&](const auto& worker) {
      return worker != nullptr && worker->name() == worker_config.name;
    });
    if (same_name != previous.end()) {
      (*same_name)->updateConfig(worker_config, supervisor_);
      workers_.push_back(std::move(*same_name));
    } else {
      workers_.push_back(makeWorker(worker_config));
      added.push_back(worker_config.name);
    }
  }
  for (auto& worker : previous) {
    if (worker != nullptr) retire(std::move(worker));
  }

  if (!started_) return;
  std::shared_ptr<bool> alive = alive_;
  for (const std::string& name : added) {
    if (WorkerProcess* worker = find(name)) worker->start();
    if (!*alive || !started_) return;
  }
}

std::unique_ptr<WorkerProcess> Supervisor::makeWorker(const WorkerConfig& config) {
  // The lambdas may use `this`: the Supervisor outlives its workers. Each copies the user's
  // callback first, because that callback may destroy the Supervisor.
  WorkerProcess::Callbacks callbacks;
  const std::string name = config.name;
  callbacks.on_spawned = [this, name](int pid) {
    if (auto on_spawned = callbacks_.on_spawned) on_spawned(name, pid);
  };
  callbacks.on_exited = [this, name](int64_t exit_status, int term_signal) {
    if (auto on_exited = callbacks_.on_exited) on_exited(name, exit_status, term_signal);
  };
  callbacks.on_spawn_failed = [this, name](int error) {
    if (auto on_spawn_failed = callbacks_.on_spawn_failed) on_spawn_failed(name, error);
  };
  auto worker = std::make_unique<WorkerProcess>(loop_, config, state_dir_, supervisor_, std::move(callbacks));
  worker->setRunAs(run_as_);
  return worker;
}

void Supervisor::retire(std::unique_ptr<WorkerProcess> worker) {
  WorkerProcess* raw = worker.get();
  retiring_.push_back(std::move(worker));
  // `done` runs inside the worker's exit callback: free it once that has returned.
  raw->stop([this] {
    LoopContext::of(loop_).defer([this, alive = alive_] {
      if (*alive) reapRetired();
    });
  });
}

void Supervisor::reapRetired() {
  std::erase_if(retiring_, [](const auto& worker) { return !worker->running(); });
}

}  // namespace stickyproxy
