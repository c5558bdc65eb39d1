#include "proxy/core/session_saver.h"

#include <algorithm>

#include "proxy/core/access_log.h"
#include "proxy/net/background_job.h"

namespace stickyproxy {

SessionSaver::SessionSaver(uv_loop_t* loop, const SessionTable* table, std::string path, SessionSaverDelays delays)
    : loop_(loop), table_(table), path_(std::move(path)), delays_(delays), timer_(loop) {}

SessionSaver::~SessionSaver() { *alive_ = false; }

void SessionSaver::changed() { schedule(delays_.change); }

void SessionSaver::touched() { schedule(delays_.touch); }

void SessionSaver::schedule(std::chrono::milliseconds delay) {
  if (flushed_) return;
  if (writing_) {
    again_ = again_ ? std::min(*again_, delay) : delay;
    return;
  }
  // An armed timer may fire later than `delay` (it was armed for a touch): bring it forward.
  if (timer_.armed() && timer_.dueIn() <= delay) return;
  timer_.start(delay, [this] { startWrite(); });
}

void SessionSaver::startWrite() {
  writing_ = true;
  MovedEntries snapshot = table_->movedEntries();
  auto result = std::make_shared<std::pair<bool, std::string>>();
  std::weak_ptr<bool> alive = alive_;
  runInBackground(
      loop_,
      [snapshot = std::move(snapshot), path = path_, result]() mutable {
        result->first = writeMovedEntries(std::move(snapshot), path, &result->second);
      },
      [this, alive, result] {
        if (alive.expired()) return;
        onWriteDone(result->first, result->second);
      });
}

void SessionSaver::onWriteDone(bool ok, const std::string& error) {
  writing_ = false;
  ++writes_completed_;
  if (!ok) logError("cannot save " + path_ + ": " + error);
  if (after_write_) {
    auto done = std::move(after_write_);
    after_write_ = nullptr;
    done();
    return;
  }
  if (again_) {
    auto delay = *again_;
    again_.reset();
    schedule(delay);
  }
}

void SessionSaver::resume() {
  flushed_ = false;
  changed();
}

void SessionSaver::flush(std::function<void()> done) {
  timer_.stop();
  flushed_ = true;
  auto write_now = [this, done = std::move(done)] {
    std::string error;
    if (!table_->save(path_, &error)) logError("cannot save " + path_ + ": " + error);
    ++writes_completed_;
    done();
  };
  if (writing_) {
    after_write_ = std::move(write_now);
  } else {
    write_now();
  }
}

}  // namespace stickyproxy
