// Keeps the moved keys' state file (<state_dir>/moved-keys.json) up to date without stalling the
// loop: the table is copied on the loop, the file is serialised and written on libuv's thread
// pool, one write at a time.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "proxy/net/timer.h"
#include "proxy/routing/session_table.h"

namespace stickyproxy {

// How soon a change reaches the file. A move, pin, announcement or expiry (what decides where a
// session goes after a restart) is written within kChangeDelay; a moved session's request only
// refreshes its last_seen, which decides when it expires (after days), so it is written within
// kTouchDelay. Many changes within a delay make one write.
struct SessionSaverDelays {
  std::chrono::milliseconds change{500};
  std::chrono::milliseconds touch{std::chrono::seconds(30)};
};

// `table` and `loop` must outlive the saver. Loop thread only.
class SessionSaver {
 public:
  SessionSaver(uv_loop_t* loop, const SessionTable* table, std::string path, SessionSaverDelays delays = {});
  ~SessionSaver();
  SessionSaver(const SessionSaver&) = delete;
  SessionSaver& operator=(const SessionSaver&) = delete;

  // Where the session goes changed: written within delays.change.
  void changed();
  // A moved session was used (its last_seen moved on): written within delays.touch.
  void touched();

  // Writes the table now, on the loop thread, after any write in progress has finished, then
  // calls `done` (on the loop thread). For shutdown: changes after this are not written.
  void flush(std::function<void()> done);
  // Writes changes again after a flush() (a hand-over that did not happen); writes the table
  // within the change delay.
  void resume();

  // Writes finished so far, successful or not, and whether one is running (for tests).
  uint64_t writesCompleted() const { return writes_completed_; }
  bool writing() const { return writing_; }

 private:
  void schedule(std::chrono::milliseconds delay);
  // Copies the table and writes it on the thread pool; a second request while one write runs
  // is remembered and written when it ends.
  void startWrite();
  void onWriteDone(bool ok, const std::string& error);

  uv_loop_t* loop_;
  const SessionTable* table_;
  std::string path_;
  SessionSaverDelays delays_;
  Timer timer_;
  bool writing_ = false;
  // The shortest delay asked for while writing_, to schedule once the write ends.
  std::optional<std::chrono::milliseconds> again_;
  std::function<void()> after_write_;   // flush() waiting for the write in progress
  bool flushed_ = false;
  uint64_t writes_completed_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy
