// One line per request on stdout (journald collects it), and error lines with context on stderr.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/net/loop_context.h"

namespace stickyproxy {

struct AccessRecord {
  std::chrono::system_clock::time_point time;
  std::string client;      // peer address (or the trusted X-Forwarded-For client)
  std::string_view method;
  std::string_view path;   // without the query string: queries may carry secrets
  int status = 0;
  uint64_t bytes_sent = 0;      // response body bytes
  uint64_t bytes_received = 0;  // request body bytes
  double duration_s = 0;
  std::string_view worker;      // "-" when none
  bool repinned = false;
  std::string_view key_hash;    // shortKeyHash() of the session key, never the key
  std::string_view previous_worker;  // X-Sticky-Previous-Worker sent with the request, "" if none
  std::string note;             // why the proxy answered by itself, "" otherwise (owned: notes are built)
};

// Formats `record` as one line (logfmt), newline included. Control characters and quotes in
// request-supplied fields are escaped so a client cannot forge log lines.
std::string formatAccessLine(const AccessRecord& record);
// The same, appended to `out`.
void appendAccessLine(std::string& out, const AccessRecord& record);

// The access log of one loop: lines gather in a buffer and leave with one write once the loop
// iteration's callbacks are done (at once past kFlushBytes, and at destruction), so a busy loop
// writes once per iteration, not once per request, and an idle one without delay. Loop thread only.
class AccessLog : public std::enable_shared_from_this<AccessLog>, private LoopContext::Deferred {
 public:
  static constexpr size_t kFlushBytes = 64 * 1024;

  static std::shared_ptr<AccessLog> create(uv_loop_t* loop, FILE* out = stdout);
  ~AccessLog() override { flush(); }
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const AccessRecord& record);
  void flush();

  AccessLog(uv_loop_t* loop, FILE* out);

 private:
  void runDeferred() override { flush(); }

  uv_loop_t* loop_;
  FILE* out_;
  std::string buffer_;
  bool flush_queued_ = false;
};

// "2026-11-26T23:07:01.123Z stickyproxy error: <message>" to stderr.
void logError(std::string_view message);
void logInfo(std::string_view message);

}  // namespace stickyproxy
