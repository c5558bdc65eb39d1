// A WorkerControl for the admin commands' tests and fuzz target: external workers in memory,
// every wait and restart answered at once, no proxy, no socket.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>

#include "proxy/core/worker_control.h"

namespace stickyproxy::testing {

class FakeWorkerControl final : public WorkerControl {
 public:
  // Workers `names` (external, at 127.0.0.1:1), all ready.
  FakeWorkerControl(uv_loop_t* loop, std::initializer_list<const char*> names, std::string config_path) {
    for (const char* name : names) {
      WorkerConfig worker;
      worker.name = name;
      worker.address.host = "127.0.0.1";
      worker.address.port = 1;
      config_.workers.push_back(worker);
    }
    config_.source_path = std::move(config_path);
    for (const WorkerConfig& worker : config_.workers) {
      workers_[worker.name] = std::make_shared<Worker>(loop, worker, config_);
      workers_[worker.name]->setState(WorkerState::kReady);
    }
  }

  // What reload() answers; whether adminDraining() says yes (drain sets it, ready clears it).
  bool reload_ok = true;
  bool draining = false;
  SessionTable& table() { return sessions_; }

  const WorkerMap& workers() const override { return workers_; }
  Worker* findWorker(const std::string& name) override {
    auto it = workers_.find(name);
    return it == workers_.end() ? nullptr : it->second.get();
  }
  const SessionTable& sessions() const override { return sessions_; }
  const WorkerProcess* process(const std::string&) const override { return nullptr; }
  bool adminDraining(const std::string&) const override { return draining; }
  void drainWorker(Worker& worker) override {
    draining = true;
    worker.setState(WorkerState::kDraining);
  }
  void readyWorker(Worker& worker) override {
    draining = false;
    worker.setState(WorkerState::kReady);
  }
  // Drains, and answers how many keys the table pins to the worker.
  size_t evictWorker(Worker& worker) override {
    drainWorker(worker);
    return sessions_.keysPinnedTo(worker.name()).size();
  }
  // "timeout" for a wait of 0 s, "drained" otherwise.
  void waitDrained(const std::string&, Duration timeout, WaitDone done) override {
    done(timeout.count() == 0 ? "timeout" : "drained");
  }
  void restartWorker(const std::string&, Duration, RestartDone done) override { done(false, "not here"); }
  bool reload() override { return reload_ok; }
  const std::string& configPath() const override { return config_.source_path; }

 private:
  Config config_;
  WorkerMap workers_;
  SessionTable sessions_{std::chrono::hours(1), std::chrono::hours(24)};
};

}  // namespace stickyproxy::testing
