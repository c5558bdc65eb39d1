// One line per request on stdout (journald collects it), and error lines with context on stderr.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

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

// Writes the line to stdout.
void writeAccessLog(const AccessRecord& record);

// "2026-11-26T23:07:01.123Z stickyproxy error: <message>" to stderr.
void logError(std::string_view message);
void logInfo(std::string_view message);

}  // namespace stickyproxy
