#include "proxy/core/access_log.h"

#include <cstdio>
#include <ctime>

namespace stickyproxy {

namespace {

std::string isoTime(std::chrono::system_clock::time_point time) {
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  // Formatting the date is the costly part and changes once a second: keep the last one.
  thread_local int64_t cached_second = -1;
  thread_local char cached_prefix[64];
  if (seconds.count() != cached_second) {
    cached_second = seconds.count();
    std::time_t t = static_cast<std::time_t>(cached_second);
    std::tm parts{};
    gmtime_r(&t, &parts);
    std::snprintf(cached_prefix, sizeof cached_prefix, "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
  }
  char text[80];
  std::snprintf(text, sizeof text, "%s.%03dZ", cached_prefix, static_cast<int>(millis));
  return text;
}

// Appends `value` quoted, escaping what could break the line or its parsing.
void appendQuoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out.append(escaped);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void writeLine(FILE* stream, const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stream);
  std::fflush(stream);
}

}  // namespace

std::string formatAccessLine(const AccessRecord& record) {
  std::string line;
  line.reserve(200 + record.path.size());
  appendAccessLine(line, record);
  return line;
}

void appendAccessLine(std::string& line, const AccessRecord& record) {
  line.append(isoTime(record.time));
  line.append(" client=").append(record.client);
  line.append(" method=");
  appendQuoted(line, record.method);
  line.append(" path=");
  appendQuoted(line, record.path);
  line.append(" status=").append(std::to_string(record.status));
  line.append(" bytes=").append(std::to_string(record.bytes_sent));
  line.append(" bytes_in=").append(std::to_string(record.bytes_received));
  char duration[32];
  std::snprintf(duration, sizeof duration, " duration=%.3f", record.duration_s);
  line.append(duration);
  line.append(" worker=").append(record.worker.empty() ? std::string_view("-") : record.worker);
  line.append(" repin=").append(record.repinned ? "1" : "0");
  line.append(" key=").append(record.key_hash.empty() ? std::string_view("-") : record.key_hash);
  if (!record.previous_worker.empty()) line.append(" prev=").append(record.previous_worker);
  if (!record.note.empty()) {
    line.append(" note=");
    appendQuoted(line, record.note);
  }
  line.push_back('\n');
}

std::shared_ptr<AccessLog> AccessLog::create(uv_loop_t* loop, FILE* out) {
  return std::make_shared<AccessLog>(loop, out);
}

AccessLog::AccessLog(uv_loop_t* loop, FILE* out) : loop_(loop), out_(out) { buffer_.reserve(kFlushBytes + 1024); }

void AccessLog::write(const AccessRecord& record) {
  appendAccessLine(buffer_, record);
  if (buffer_.size() >= kFlushBytes) {
    flush();
  } else if (!flush_queued_ && loop_->data != nullptr) {
    flush_queued_ = true;
    LoopContext::of(loop_).defer(std::shared_ptr<LoopContext::Deferred>(shared_from_this(), this));
  } else if (!flush_queued_) {
    flush();  // no loop context (shutting down): nothing would flush later
  }
}

void AccessLog::flush() {
  flush_queued_ = false;
  if (buffer_.empty()) return;
  std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
  std::fflush(out_);
  buffer_.clear();
}

void logError(std::string_view message) {
  writeLine(stderr, isoTime(std::chrono::system_clock::now()) + " stickyproxy error: " + std::string(message) + "\n");
}

void logInfo(std::string_view message) {
  writeLine(stderr, isoTime(std::chrono::system_clock::now()) + " stickyproxy: " + std::string(message) + "\n");
}

}  // namespace stickyproxy
