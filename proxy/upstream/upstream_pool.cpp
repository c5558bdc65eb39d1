#include "proxy/upstream/upstream_pool.h"

#include <algorithm>

#include "proxy/net/loop_context.h"

namespace stickyproxy {

UpstreamPool::UpstreamPool(uv_loop_t* loop, Endpoint endpoint, PoolOptions options)
    : loop_(loop), endpoint_(std::move(endpoint)), options_(options), sweep_timer_(loop) {}

UpstreamPool::~UpstreamPool() { closeIdle(); }

ClientConnectionPtr UpstreamPool::takeIdle() {
  while (!idle_.empty()) {
    ClientConnectionPtr connection = std::move(idle_.back());
    idle_.pop_back();
    if (!connection->reusable()) {
      connection->close();
      continue;
    }
    connection->setIdleClosedCallback(nullptr);
    return connection;
  }
  return nullptr;
}

void UpstreamPool::acquire(AcquireCallback done) {
  if (ClientConnectionPtr connection = takeIdle()) {
    LoopContext::of(loop_).defer([connection, done = std::move(done)] { done(connection, 0, true); });
    return;
  }
  ParserLimits limits = options_.response_limits;
  ClientConnectionPtr connection = ClientConnection::create(loop_, endpoint_, limits);
  connection->setWriteHighWater(options_.write_high_water);
  connection->connect(options_.connect_timeout, [connection, done = std::move(done)](int status) {
    if (status != 0) {
      done(nullptr, status, false);
      return;
    }
    done(connection, 0, false);
  });
}

void UpstreamPool::release(ClientConnectionPtr connection) {
  if (!connection) return;
  // A connection to the worker's previous address (it moved on reload) is never handed out again.
  if (!connection->reusable() || idle_.size() >= options_.max_idle ||
      !(connection->endpoint() == endpoint_)) {
    connection->close();
    return;
  }
  // Two pointers (no allocation): the connection calls it while alive, and the pool clears it
  // before it lets go of the connection.
  ClientConnection* raw = connection.get();
  connection->setIdleClosedCallback([this, raw] {
    std::erase_if(idle_, [raw](const ClientConnectionPtr& idle) { return idle.get() == raw; });
  });
  idle_.push_back(std::move(connection));
  if (!sweep_timer_.armed()) {
    sweep_timer_.startRepeating(std::max(options_.idle_timeout / 4, std::chrono::milliseconds(250)), [this] { sweep(); });
  }
}

void UpstreamPool::sweep() {
  auto now = std::chrono::steady_clock::now();
  std::erase_if(idle_, [&](const ClientConnectionPtr& connection) {
    if (connection->reusable() && now - connection->idleSince() < options_.idle_timeout) return false;
    connection->setIdleClosedCallback(nullptr);
    connection->close();
    return true;
  });
  if (idle_.empty()) sweep_timer_.stop();
}

void UpstreamPool::closeIdle() {
  sweep_timer_.stop();
  for (auto& connection : idle_) {
    connection->setIdleClosedCallback(nullptr);
    connection->close();
  }
  idle_.clear();
}

void UpstreamPool::setEndpoint(Endpoint endpoint) {
  endpoint_ = std::move(endpoint);
  closeIdle();
}

}  // namespace stickyproxy
