#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <picojson.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>
#include "tests/integration/routing_cookies.h"

#ifndef STICKYPROXY_BINARY_DIR
#error "STICKYPROXY_BINARY_DIR must name the build directory"
#endif

extern char** environ;

namespace stickyproxy::integration {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kPieceSize = 64 * 1024;
constexpr size_t kMaxLineLength = 1024 * 1024;

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

void replaceAll(std::string& text, std::string_view from, std::string_view to) {
  size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
}

int pollMillis(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, 24 * 3600 * 1000));
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks), to tell a process from a later one
// that got the same pid. -1 when the process is gone.
long long processStartTime(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  // Fields after the command: state(3) ppid(4) ... starttime(22).
  for (int index = 3; index <= 22; ++index) {
    if (!(fields >> field)) return -1;
  }
  return std::atoll(field.c_str());
}

}  // namespace

std::string binaryPath(std::string_view name) { return std::string(STICKYPROXY_BINARY_DIR) + "/" + std::string(name); }

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds poll) {
  auto end = Clock::now() + deadline;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(poll);
  }
}

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw HarnessError(errnoText("socket"));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::string message = errnoText("bind to 127.0.0.1:0");
    ::close(fd);
    throw HarnessError(message);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

int runProxyToExit(const std::vector<std::string>& args, const std::string& log_path,
                   std::chrono::milliseconds deadline) {
  std::vector<std::string> argv{binaryPath("stickyproxy")};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess process(argv, log_path);
  std::optional<int> status = process.waitExit(deadline);
  if (!status) throw HarnessError("stickyproxy " + args.front() + " did not exit; log:\n" + fileTail(log_path));
  return *status;
}

bool canConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Files

std::string fileTail(const std::string& path, size_t max_bytes) {
  std::string text = readFile(path);
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

// ---------------------------------------------------------------------------------------------
// Processes

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path, std::vector<std::string> extra_env)
    : log_path_(std::move(log_path)) {
  if (argv.empty()) throw HarnessError("ChildProcess: empty argv");
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string_view name = text.substr(0, text.find('='));
    bool replaced = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& extra) {
      return std::string_view(extra).substr(0, extra.find('=')) == name;
    });
    if (!replaced) env.emplace_back(text);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> argv_pointers;
  for (std::string& arg : argv) argv_pointers.push_back(arg.data());
  argv_pointers.push_back(nullptr);
  std::vector<char*> env_pointers;
  for (std::string& entry : env) env_pointers.push_back(entry.data());
  env_pointers.push_back(nullptr);
  std::string exec_failed = "ChildProcess: exec " + argv[0] + " failed\n";

  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw HarnessError(errnoText("open " + log_path_));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(log_fd);
    throw HarnessError(errnoText("open /dev/null"));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    throw HarnessError(errnoText("fork"));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);  // the test process died before prctl
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);  // no test socket leaks into the child
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::sigaction(sig, &default_action, nullptr);
    ::execve(argv_pointers[0], argv_pointers.data(), env_pointers.data());
    ssize_t ignored = ::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    (void)ignored;
    _exit(127);
  }
  ::setpgid(pid, pid);  // also from here, so the group exists whichever side runs first
  ::close(log_fd);
  ::close(null_fd);
  pid_ = pid;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  stop();
  killGroupLeftovers();
}

bool ChildProcess::running() {
  if (status_) return false;
  int status = 0;
  pid_t result = ::waitpid(pid_, &status, WNOHANG);
  if (result == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

void ChildProcess::kill(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::waitExit(std::chrono::milliseconds deadline) {
  waitUntil([this] { return !running(); }, deadline, 5ms);
  return status_;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!status_) {
    ::kill(pid_, SIGTERM);
    if (!waitExit(grace)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) status_ = status;
    }
  }
  return status_.value_or(-1);
}

void ChildProcess::killGroupLeftovers() {
  // The group is named after our child's pid; its members (say, a proxy's workers) keep it
  // alive after the leader was reaped. ESRCH when none is left.
  ::kill(-pid_, SIGKILL);
}

std::string describeWaitStatus(int status) {
  if (status < 0) return "unknown status";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

namespace {
int statusFieldKb(pid_t pid, std::string_view field) {
  std::istringstream status(readFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      return std::atoi(line.c_str() + field.size() + 1);
    }
  }
  return -1;
}
}  // namespace

int rssKb(pid_t pid) { return statusFieldKb(pid, "VmRSS"); }

int peakRssKb(pid_t pid) { return statusFieldKb(pid, "VmHWM"); }

std::vector<pid_t> childPids(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    std::string stat = readFile("/proc/" + name + "/stat");
    // "pid (command) state ppid ...": the command may hold spaces and parentheses.
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z') {
      children.push_back(static_cast<pid_t>(std::atoi(name.c_str())));
    }
  }
  std::sort(children.begin(), children.end());
  return children;
}

bool processExists(pid_t pid) {
  if (pid <= 0) return false;
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  return stat[paren + 2] != 'Z';
}

// ---------------------------------------------------------------------------------------------
// The proxy's access log

std::vector<AccessLogLine> parseAccessLog(const std::string& log_text) {
  static const std::regex kLine(
      R"re(^\S+ client=(\S+) method="((?:[^"\\]|\\.)*)" path="((?:[^"\\]|\\.)*)" status=(\d+) bytes=\d+ )re"
      R"re(bytes_in=\d+ duration=[0-9.]+ worker=(\S+) repin=([01]) key=(\S+)(?: prev=(\S+))?(?: note="((?:[^"\\]|\\.)*)")?$)re");
  std::vector<AccessLogLine> lines;
  std::istringstream input(log_text);
  std::string text;
  std::smatch match;
  while (std::getline(input, text)) {
    if (!std::regex_match(text, match, kLine)) continue;
    AccessLogLine line;
    line.client = match[1];
    line.method = match[2];
    line.path = match[3];
    line.status = std::stoi(match[4]);
    line.worker = match[5];
    line.repin = match[6] == "1";
    line.key = match[7];
    line.previous_worker = match[8];
    line.note = match[9];
    line.raw = text;
    lines.push_back(std::move(line));
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Response

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

std::string Response::headerOr(std::string_view name, std::string fallback) const {
  auto value = header(name);
  return value ? *value : fallback;
}

std::vector<std::string> Response::headerValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) values.push_back(value);
  }
  return values;
}

std::optional<std::string> Response::setCookieValue(std::string_view name) const {
  for (const std::string& set_cookie : headerValues("Set-Cookie")) {
    size_t equals = set_cookie.find('=');
    if (equals == std::string::npos || set_cookie.compare(0, equals, name) != 0) continue;
    size_t end = set_cookie.find(';', equals);
    return set_cookie.substr(equals + 1, end == std::string::npos ? std::string::npos : end - equals - 1);
  }
  return std::nullopt;
}

std::vector<std::string> seededSessionKeys(size_t count, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::vector<std::string> keys;
  keys.reserve(count);
  char text[33];
  for (size_t i = 0; i < count; ++i) {
    uint64_t high = generator();
    uint64_t low = generator();
    std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(high),
                  static_cast<unsigned long long>(low));
    keys.push_back(signedCookie(text));
  }
  return keys;
}

bool Response::closesConnection() const {
  bool close = false;
  bool keep_alive = false;
  for (const std::string& value : headerValues("Connection")) {
    std::string tokens = lower(value);
    if (tokens.find("close") != std::string::npos) close = true;
    if (tokens.find("keep-alive") != std::string::npos) keep_alive = true;
  }
  if (version == "HTTP/1.0") return !keep_alive;
  return close;
}

// ---------------------------------------------------------------------------------------------
// The response parser: fed whatever arrives, consumes what it can.

class HttpClient::Parser {
 public:
  Parser(bool head_request, bool keep_body, std::function<void(std::string_view)> on_body)
      : head_request_(head_request), keep_body_(keep_body), on_body_(std::move(on_body)) {}

  // Consumes a prefix of `input`; returns its length. Stops after the end of the response.
  size_t feed(std::string_view input) {
    size_t used = 0;
    while (used < input.size() && state_ != State::kDone) {
      std::string_view rest = input.substr(used);
      switch (state_) {
        case State::kFixedBody:
        case State::kChunkData: {
          size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
          body(rest.substr(0, take));
          used += take;
          remaining_ -= take;
          if (remaining_ == 0) state_ = state_ == State::kFixedBody ? State::kDone : State::kChunkDataEnd;
          break;
        }
        case State::kUntilClose:
          body(rest);
          used += rest.size();
          break;
        default: {
          size_t newline = rest.find('\n');
          if (newline == std::string_view::npos) {
            if (rest.size() > kMaxLineLength) throw HarnessError("response line longer than 1 MiB");
            return used;
          }
          used += newline + 1;
          line(trim(rest.substr(0, newline)));
        }
      }
    }
    return used;
  }

  // The connection ended: completes a body that runs until close, or throws.
  void endOfInput() {
    if (state_ == State::kUntilClose) {
      state_ = State::kDone;
      return;
    }
    if (state_ != State::kDone) {
      throw HarnessError(std::string("connection closed before the response was complete (") + stateName() + ")");
    }
  }

  bool headDone() const { return state_ != State::kStatusLine && state_ != State::kHeaders; }
  bool done() const { return state_ == State::kDone; }
  Response& response() { return response_; }
  // The finished response, with its checksum.
  Response take() {
    response_.body_fnv = hash_.hex();
    return std::move(response_);
  }

 private:
  enum class State { kStatusLine, kHeaders, kFixedBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kUntilClose, kDone };

  const char* stateName() const {
    switch (state_) {
      case State::kStatusLine: return "no status line";
      case State::kHeaders: return "in the head";
      case State::kFixedBody: return "in a Content-Length body";
      case State::kChunkSize:
      case State::kChunkData:
      case State::kChunkDataEnd:
      case State::kTrailers: return "in a chunked body";
      case State::kUntilClose: return "body until close";
      case State::kDone: return "done";
    }
    return "?";
  }

  void body(std::string_view data) {
    if (data.empty()) return;
    response_.body_bytes += data.size();
    hash_.update(data);
    if (keep_body_) response_.body.append(data);
    if (on_body_) on_body_(data);
  }

  void line(std::string_view text) {
    switch (state_) {
      case State::kStatusLine: {
        if (text.empty()) return;  // tolerate stray CRLF between responses
        // "HTTP/1.1 200 OK"
        size_t space = text.find(' ');
        if (space == std::string_view::npos || text.substr(0, 5) != "HTTP/") {
          throw HarnessError("malformed status line: " + std::string(text));
        }
        response_.version = std::string(text.substr(0, space));
        std::string_view rest = text.substr(space + 1);
        response_.status = std::atoi(std::string(rest.substr(0, 3)).c_str());
        response_.reason = rest.size() > 4 ? std::string(rest.substr(4)) : std::string();
        state_ = State::kHeaders;
        return;
      }
      case State::kHeaders: {
        if (!text.empty()) {
          size_t colon = text.find(':');
          if (colon == std::string_view::npos) throw HarnessError("malformed header line: " + std::string(text));
          response_.headers.emplace_back(std::string(text.substr(0, colon)), std::string(trim(text.substr(colon + 1))));
          return;
        }
        headComplete();
        return;
      }
      case State::kChunkSize: {
        std::string size_text(text.substr(0, text.find(';')));
        char* end = nullptr;
        remaining_ = std::strtoull(size_text.c_str(), &end, 16);
        if (size_text.empty() || end != size_text.c_str() + size_text.size()) {
          throw HarnessError("malformed chunk size line: " + std::string(text));
        }
        state_ = remaining_ == 0 ? State::kTrailers : State::kChunkData;
        return;
      }
      case State::kChunkDataEnd:
        if (!text.empty()) throw HarnessError("chunk data not followed by CRLF");
        state_ = State::kChunkSize;
        return;
      case State::kTrailers:
        if (text.empty()) finishMessage();
        return;
      default:
        return;
    }
  }

  void headComplete() {
    response_.head_at = Clock::now();
    int status = response_.status;
    if (status >= 100 && status < 200 && status != 101) {
      // An interim response (100 Continue): the real one follows.
      response_ = Response();
      state_ = State::kStatusLine;
      return;
    }
    if (head_request_ || status == 204 || status == 304) {
      finishMessage();
      return;
    }
    std::string coding = lower(response_.headerOr("Transfer-Encoding"));
    if (coding.find("chunked") != std::string::npos) {
      response_.chunked = true;
      state_ = State::kChunkSize;
      return;
    }
    if (auto length = response_.header("Content-Length")) {
      remaining_ = std::strtoull(length->c_str(), nullptr, 10);
      state_ = State::kFixedBody;
      if (remaining_ == 0) finishMessage();
      return;
    }
    state_ = State::kUntilClose;
  }

  void finishMessage() { state_ = State::kDone; }

  bool head_request_;
  bool keep_body_;
  std::function<void(std::string_view)> on_body_;
  State state_ = State::kStatusLine;
  uint64_t remaining_ = 0;
  Fnv1a64 hash_;
  Response response_;
};

// ---------------------------------------------------------------------------------------------
// HttpClient

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout) : HttpClient(std::string(), port, timeout) {}

HttpClient::HttpClient(std::string unix_path, uint16_t port, std::chrono::milliseconds timeout)
    : unix_path_(std::move(unix_path)), port_(port), timeout_(timeout) {}

HttpClient HttpClient::unixSocket(std::string path, std::chrono::milliseconds timeout) {
  return HttpClient(std::move(path), 0, timeout);
}

HttpClient::~HttpClient() { close(); }

HttpClient::HttpClient(HttpClient&& other) noexcept
    : unix_path_(std::move(other.unix_path_)),
      port_(other.port_),
      timeout_(other.timeout_),
      fd_(std::exchange(other.fd_, -1)),
      connections_opened_(other.connections_opened_),
      reuse_ok_(other.reuse_ok_),
      send_failed_(other.send_failed_),
      eof_(other.eof_),
      jar_enabled_(other.jar_enabled_),
      keep_bodies_(other.keep_bodies_),
      jar_(std::move(other.jar_)),
      input_(std::move(other.input_)),
      parser_(std::move(other.parser_)),
      sse_buffer_(std::move(other.sse_buffer_)),
      last_read_at_(other.last_read_at_) {}

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  input_.clear();
  parser_.reset();
  sse_buffer_.clear();
}

void HttpClient::setTimeout(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  if (fd_ >= 0) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
}

void HttpClient::connect() {
  close();
  bool unix_socket = !unix_path_.empty();
  int fd = ::socket(unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw HarnessError(errnoText("socket"));
  if (receive_buffer_ > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_, sizeof receive_buffer_);
  int result;
  if (unix_socket) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (unix_path_.size() >= sizeof address.sun_path) {
      ::close(fd);
      throw HarnessError("unix socket path too long: " + unix_path_);
    }
    std::memcpy(address.sun_path, unix_path_.c_str(), unix_path_.size() + 1);
    result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  } else {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port_);
    result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  if (result != 0) {
    std::string message =
        errnoText("connect to " + (unix_socket ? unix_path_ : "127.0.0.1:" + std::to_string(port_)));
    ::close(fd);
    throw HarnessError(message);
  }
  if (!unix_socket) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  fd_ = fd;
  setTimeout(timeout_);
  ++connections_opened_;
  reuse_ok_ = true;
  send_failed_ = false;
  eof_ = false;
}

void HttpClient::ensureConnected() {
  if (fd_ >= 0 && reuse_ok_ && !eof_) {
    // A kept-alive connection the server has closed meanwhile reads as EOF right away.
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, 0) > 0) {
      char byte;
      ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n <= 0) reuse_ok_ = false;
    }
  }
  if (fd_ < 0 || !reuse_ok_ || eof_) connect();
}

std::string HttpClient::requestHead(std::string_view method, std::string_view path, const Headers& headers,
                                    std::optional<uint64_t> content_length, bool chunked) {
  std::string head;
  head.append(method).append(" ").append(path).append(" HTTP/1.1\r\n");
  auto has = [&](std::string_view name) {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& field) { return iequals(field.first, name); });
  };
  if (!has("Host")) head += unix_path_.empty() ? "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n" : "Host: localhost\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  if (jar_enabled_ && !jar_.empty() && !has("Cookie")) {
    std::string cookies;
    for (const auto& [name, value] : jar_) cookies += (cookies.empty() ? "" : "; ") + name + "=" + value;
    head += "Cookie: " + cookies + "\r\n";
  }
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (content_length && !has("Content-Length")) {
    head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  }
  head += "\r\n";
  return head;
}

void HttpClient::beginResponse(bool head_request) {
  parser_ = std::make_unique<Parser>(head_request, keep_bodies_, nullptr);
  if (!input_.empty()) input_.erase(0, parser_->feed(input_));
}

bool HttpClient::readSome() {
  pollfd entry{fd_, POLLIN, 0};
  int ready = ::poll(&entry, 1, pollMillis(timeout_));
  if (ready == 0) {
    throw HarnessError("timed out after " + std::to_string(timeout_.count()) + " ms waiting for the server");
  }
  char buffer[kPieceSize];
  ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  last_read_at_ = Clock::now();
  input_.append(buffer, static_cast<size_t>(n));
  if (parser_ && !parser_->done()) input_.erase(0, parser_->feed(input_));
  return true;
}

bool HttpClient::transmit(std::string_view data) {
  size_t sent = 0;
  while (sent < data.size()) {
    if (eof_ || send_failed_) return false;
    if (parser_ && parser_->done()) {
      // The server answered before the request was complete (413, or an error): stop sending.
      send_failed_ = true;
      return false;
    }
    pollfd entry{fd_, POLLIN | POLLOUT, 0};
    int ready = ::poll(&entry, 1, pollMillis(timeout_));
    if (ready == 0) {
      throw HarnessError("timed out after " + std::to_string(timeout_.count()) + " ms sending the request (" +
                         std::to_string(sent) + " of " + std::to_string(data.size()) + " bytes of this piece sent)");
    }
    if ((entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (!readSome()) {
        send_failed_ = true;
        return false;
      }
    }
    if ((entry.revents & POLLOUT) != 0) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        send_failed_ = true;  // EPIPE / ECONNRESET: the answer, if any, is still readable
        return false;
      }
      sent += static_cast<size_t>(n);
    }
  }
  return true;
}

Response HttpClient::finishResponse() {
  if (!parser_) throw HarnessError("no response is expected");
  while (!parser_->done()) {
    if (eof_) {
      parser_->endOfInput();
      break;
    }
    readSome();
  }
  Response response = parser_->take();
  parser_.reset();
  rememberCookies(response);
  reuse_ok_ = !response.closesConnection() && !send_failed_ && !eof_;
  return response;
}

void HttpClient::rememberCookies(const Response& response) {
  if (!jar_enabled_) return;
  for (const std::string& set_cookie : response.headerValues("Set-Cookie")) {
    std::string_view text(set_cookie);
    std::string_view pair = trim(text.substr(0, text.find(';')));
    size_t equals = pair.find('=');
    if (equals == std::string_view::npos) continue;
    std::string name(trim(pair.substr(0, equals)));
    std::string value(trim(pair.substr(equals + 1)));
    if (lower(text).find("max-age=0") != std::string::npos) {
      jar_.erase(name);
    } else {
      jar_[name] = value;
    }
  }
}

std::optional<std::string> HttpClient::cookie(const std::string& name) const {
  auto found = jar_.find(name);
  if (found == jar_.end()) return std::nullopt;
  return found->second;
}

Response HttpClient::request(std::string_view method, std::string_view path, const Headers& headers,
                             std::string_view body) {
  ensureConnected();
  bool needs_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  std::string head = requestHead(method, path, headers, needs_length ? std::optional<uint64_t>(body.size()) : std::nullopt,
                                 false);
  beginResponse(method == "HEAD");
  if (transmit(head)) transmit(body);
  return finishResponse();
}

Response HttpClient::uploadPattern(std::string_view method, std::string_view path, uint64_t bytes, bool chunked,
                                   const Headers& headers) {
  ensureConnected();
  beginResponse(method == "HEAD");
  static const std::string kBlock = patternText(0, kPieceSize);
  bool ok = transmit(requestHead(method, path, headers, bytes, chunked));
  uint64_t sent = 0;
  std::string piece;
  while (ok && sent < bytes) {
    size_t size = static_cast<size_t>(std::min<uint64_t>(kPieceSize, bytes - sent));
    std::string_view data(kBlock.data(), size);  // pieces start at multiples of 64 KiB
    if (chunked) {
      char size_line[24];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", size);
      piece.assign(size_line).append(data).append("\r\n");
      ok = transmit(piece);
    } else {
      ok = transmit(data);
    }
    sent += size;
  }
  if (ok && chunked) transmit("0\r\n\r\n");
  return finishResponse();
}

size_t HttpClient::bytesWaiting() const {
  int waiting = 0;
  if (fd_ < 0 || ::ioctl(fd_, FIONREAD, &waiting) != 0) return 0;
  return static_cast<size_t>(waiting);
}

void HttpClient::sendRaw(std::string_view bytes) {
  if (fd_ < 0 || !reuse_ok_) connect();
  transmit(bytes);
}

Response HttpClient::readResponse(bool head_request) {
  if (fd_ < 0) throw HarnessError("readResponse: not connected");
  if (!parser_) beginResponse(head_request);
  return finishResponse();
}

bool HttpClient::waitForClose(std::chrono::milliseconds deadline) {
  if (fd_ < 0) return false;
  parser_.reset();
  auto end = Clock::now() + deadline;
  while (!eof_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) return false;
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, pollMillis(left)) == 0) return false;
    char buffer[kPieceSize];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) eof_ = true;
  }
  input_.clear();
  reuse_ok_ = false;
  return true;
}

Response HttpClient::startStream(std::string_view method, std::string_view path, const Headers& headers,
                                 std::string_view body) {
  ensureConnected();
  sse_buffer_.clear();
  parser_ = std::make_unique<Parser>(method == "HEAD", false, [this](std::string_view data) { sse_buffer_.append(data); });
  if (!input_.empty()) input_.erase(0, parser_->feed(input_));
  bool needs_length = !body.empty() || method == "POST" || method == "PUT";
  if (transmit(requestHead(method, path, headers, needs_length ? std::optional<uint64_t>(body.size()) : std::nullopt,
                           false))) {
    transmit(body);
  }
  while (!parser_->headDone()) {
    if (eof_) parser_->endOfInput();  // throws: no head
    readSome();
  }
  Response head = parser_->response();
  head.body.clear();
  return head;
}

std::optional<SseEvent> HttpClient::nextEvent() {
  while (true) {
    size_t end = sse_buffer_.find("\n\n");
    if (end != std::string::npos) {
      SseEvent event;
      event.raw = sse_buffer_.substr(0, end);
      event.arrived = last_read_at_;
      sse_buffer_.erase(0, end + 2);
      std::istringstream lines(event.raw);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.rfind("data:", 0) != 0) continue;
        std::string_view value = std::string_view(line).substr(5);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (!event.data.empty()) event.data += "\n";
        event.data.append(value);
      }
      return event;
    }
    if (!parser_) return std::nullopt;
    if (parser_->done()) {
      finishResponse();
      return std::nullopt;
    }
    if (eof_) parser_->endOfInput();  // throws unless the body ran until close
    if (!parser_->done()) readSome();
  }
}

// ---------------------------------------------------------------------------------------------
// WorkerUnderTest

std::vector<std::string> WorkerUnderTest::argv(const TempDir& dir, std::string_view binary, const std::string& name,
                                               uint16_t port, std::vector<std::string> extra_args) {
  std::vector<std::string> args{binaryPath(binary), "--name", name, "--listen", "127.0.0.1:" + std::to_string(port),
                                "--state-dir", dir.file("state")};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return args;
}

WorkerUnderTest::WorkerUnderTest(const TempDir& dir, std::string_view binary, std::string name,
                                 std::vector<std::string> extra_args)
    : WorkerUnderTest(dir, binary, std::move(name), freePort(), std::move(extra_args)) {}

WorkerUnderTest::WorkerUnderTest(const TempDir& dir, std::string_view binary, std::string name, uint16_t port,
                                 std::vector<std::string> extra_args)
    : port_(port), process_(argv(dir, binary, name, port_, std::move(extra_args)), dir.file(name + ".log")) {
  bool ready = waitUntil(
      [this] {
        if (!process_.running()) return true;
        try {
          HttpClient probe(port_, 2s);
          return probe.get("/ping").status == 200;
        } catch (const HarnessError&) {
          return false;
        }
      },
      10s);
  if (!ready || !process_.running()) {
    throw HarnessError("worker " + std::string(binary) + " " + name + " did not become ready (" +
                       (process_.running() ? std::string("still running") : describeWaitStatus(process_.exitStatus().value_or(-1))) +
                       "); log:\n" + fileTail(process_.logPath()));
  }
}

// ---------------------------------------------------------------------------------------------
// AdminClient

AdminClient::AdminClient(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) throw HarnessError("admin socket path too long: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::string message = errnoText("cannot connect to the admin socket " + path);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw HarnessError(message);
  }
}

AdminClient::~AdminClient() {
  if (fd_ >= 0) ::close(fd_);
}

void AdminClient::sendRaw(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw HarnessError(errnoText("admin socket send"));
    sent += static_cast<size_t>(n);
  }
}

std::string AdminClient::readAnswer(std::chrono::milliseconds deadline) {
  auto until = Clock::now() + deadline;
  while (true) {
    size_t end = input_.find("\n\n");
    if (end != std::string::npos) {
      std::string answer = input_.substr(0, end);
      input_.erase(0, end + 2);
      return answer;
    }
    if (!readSome(until)) throw HarnessError("admin socket: no complete answer; got \"" + input_ + "\"");
  }
}

std::string AdminClient::command(const std::string& line, std::chrono::milliseconds deadline) {
  sendRaw(line + "\n");
  return readAnswer(deadline);
}

bool AdminClient::waitForClose(std::chrono::milliseconds deadline) {
  auto until = Clock::now() + deadline;
  while (readSome(until)) {
  }
  return eof_;
}

void AdminClient::setReceiveBuffer(int bytes) { ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }

bool AdminClient::readSome(Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  if (left.count() <= 0 || eof_) return false;
  pollfd waiting{fd_, POLLIN, 0};
  if (::poll(&waiting, 1, pollMillis(left)) <= 0) return false;
  char buffer[4096];
  ssize_t n = ::read(fd_, buffer, sizeof buffer);
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  input_.append(buffer, static_cast<size_t>(n));
  return true;
}

// ---------------------------------------------------------------------------------------------
// ProxyUnderTest

ProxyUnderTest::ProxyUnderTest(std::string config_template)
    : port_(freePort()),
      metrics_port_(freePort()),
      config_path_(dir_.file("proxy.conf")),
      log_path_(dir_.file("proxy.log")) {
  while (metrics_port_ == port_) metrics_port_ = freePort();
  writeFile(config_path_, fill(config_template));
  // standardConfig() names it in routing.secret_file, so that tests can sign their own sessions.
  writeTestRoutingSecret(dir_.file("routing-secret"));
}

ProxyUnderTest::~ProxyUnderTest() {
  if (process_) stop();
}

std::string ProxyUnderTest::fill(const std::string& config_template) const {
  std::string text = config_template;
  replaceAll(text, "@PORT@", std::to_string(port_));
  replaceAll(text, "@METRICS_PORT@", std::to_string(metrics_port_));
  replaceAll(text, "@DIR@", dir_.path());
  replaceAll(text, "@BIN@", STICKYPROXY_BINARY_DIR);
  return text;
}

void ProxyUnderTest::rewriteConfig(std::string config_template) { writeFile(config_path_, fill(config_template)); }

void ProxyUnderTest::start(std::chrono::milliseconds deadline) {
  if (process_ && process_->running()) throw HarnessError("proxy already running");
  process_ = std::make_unique<ChildProcess>(std::vector<std::string>{binaryPath("stickyproxy"), "-c", config_path_},
                                            log_path_, environment_);
  bool ready = waitUntil(
      [this] {
        if (!process_->running()) return true;
        try {
          HttpClient probe(port_, 2s);
          return probe.get("/ping").status == 200;
        } catch (const HarnessError&) {
          return false;
        }
      },
      deadline);
  if (!process_->running()) {
    throw HarnessError("stickyproxy " + describeWaitStatus(process_->exitStatus().value_or(-1)) +
                       " during start-up; log:\n" + fileTail(log_path_));
  }
  if (!ready) {
    throw HarnessError("stickyproxy did not answer GET /ping with 200 on port " + std::to_string(port_) + " within " +
                       std::to_string(deadline.count()) + " ms; log:\n" + fileTail(log_path_));
  }
}

void ProxyUnderTest::reload() {
  if (!process_) throw HarnessError("reload: proxy not started");
  process_->kill(SIGHUP);
}

int ProxyUnderTest::stop(std::chrono::milliseconds grace) {
  if (!process_) return -1;
  // Remember the workers, to clean up any the proxy leaves behind (by pid and start time, so a
  // recycled pid is never hit).
  std::vector<std::pair<pid_t, long long>> workers;
  if (process_->running()) {
    for (pid_t child : integration::childPids(process_->pid())) workers.emplace_back(child, processStartTime(child));
  }
  int status = process_->stop(grace);
  for (const auto& [child, started] : workers) {
    if (started < 0) continue;
    // Give the workers the same grace to follow their supervisor out.
    waitUntil([&, child = child, started = started] { return processStartTime(child) != started; }, grace);
    if (processStartTime(child) == started) {
      leftover_workers_.push_back(child);
      ::kill(child, SIGKILL);
    }
  }
  return status;
}

std::string ProxyUnderTest::adminCommand(const std::string& line, std::chrono::milliseconds deadline) const {
  AdminClient admin(adminSocketPath());
  return admin.command(line, deadline);
}

std::vector<WorkerStatus> ProxyUnderTest::workerStatuses() const {
  const std::string answer = adminCommand("show workers json");
  picojson::value parsed;
  std::string error = picojson::parse(parsed, answer);
  if (!error.empty() || !parsed.is<picojson::object>() || !parsed.get("workers").is<picojson::array>()) {
    throw HarnessError("\"show workers json\" answered: " + answer);
  }
  auto count = [](const picojson::value& item, const char* key) -> uint64_t {
    const picojson::value& value = item.get(key);
    return value.is<double>() ? static_cast<uint64_t>(value.get<double>()) : 0;
  };
  std::vector<WorkerStatus> statuses;
  for (const picojson::value& item : parsed.get("workers").get<picojson::array>()) {
    WorkerStatus status;
    status.name = item.get("name").to_str();
    status.state = item.get("state").to_str();
    status.pid = static_cast<pid_t>(count(item, "pid"));
    status.admin_draining = item.get("admin_draining").is<bool>() && item.get("admin_draining").get<bool>();
    status.sessions = count(item, "sessions");
    status.in_flight = count(item, "in_flight");
    status.queued = count(item, "queued");
    status.requests = count(item, "requests");
    status.errors = count(item, "errors");
    status.restarts = count(item, "restarts");
    statuses.push_back(std::move(status));
  }
  return statuses;
}

WorkerStatus ProxyUnderTest::workerStatus(const std::string& name) const {
  for (WorkerStatus& status : workerStatuses()) {
    if (status.name == name) return std::move(status);
  }
  throw HarnessError("the proxy reports no worker " + name);
}

bool ProxyUnderTest::waitForWorker(const std::string& name, const std::function<bool(const WorkerStatus&)>& condition,
                                   std::chrono::milliseconds deadline) const {
  return waitUntil(
      [&] {
        try {
          for (const WorkerStatus& status : workerStatuses()) {
            if (status.name == name) return condition(status);
          }
        } catch (const HarnessError&) {
          // The admin socket is not (yet) there: ask again.
        }
        return false;
      },
      deadline);
}

bool ProxyUnderTest::waitForWorkerState(const std::string& name, std::string_view state,
                                        std::chrono::milliseconds deadline) const {
  return waitForWorker(name, [&](const WorkerStatus& status) { return status.state == state; }, deadline);
}

pid_t ProxyUnderTest::killWorker(const std::string& name, std::chrono::milliseconds deadline) {
  const WorkerStatus before = workerStatus(name);
  if (before.pid <= 0) throw HarnessError("worker " + name + " runs no process to kill (" + before.state + ")");
  if (::kill(before.pid, SIGKILL) != 0) throw HarnessError(errnoText("kill -9 " + std::to_string(before.pid)));
  if (!waitForWorker(name, [&](const WorkerStatus& now) { return now.restarts > before.restarts; }, deadline)) {
    throw HarnessError("the proxy did not notice within " + std::to_string(deadline.count()) + " ms that worker " +
                       name + " (pid " + std::to_string(before.pid) + ") was killed; log:\n" + fileTail(log_path_));
  }
  return before.pid;
}

std::string ProxyUnderTest::killSessionWorker(const std::string& key, std::chrono::milliseconds deadline) {
  HttpClient probe = client(deadline);
  Response response = probe.get("/whoami", {{"Cookie", kCookieName + "=" + key}});
  const std::string worker = response.headerOr("X-Worker");
  if (response.status != 200 || worker.empty()) {
    throw HarnessError("session " + key + ": GET /whoami answered " + std::to_string(response.status) +
                       " without X-Worker: " + response.body);
  }
  const std::string answered_pid = response.headerOr("X-Worker-Pid");
  const pid_t reported_pid = workerStatus(worker).pid;
  if (!answered_pid.empty() && answered_pid != std::to_string(reported_pid)) {
    throw HarnessError("worker " + worker + " answered from pid " + answered_pid + " but the proxy reports pid " +
                       std::to_string(reported_pid));
  }
  killWorker(worker, deadline);
  return worker;
}

std::string ProxyUnderTest::standardConfig(int workers, std::string_view worker_binary,
                                           const std::vector<std::pair<std::string, std::string>>& overrides) {
  using Section = std::pair<std::string, std::vector<std::pair<std::string, std::string>>>;
  std::vector<Section> sections{
      {"proxy",
       {{"listen", "127.0.0.1:@PORT@"},
        {"metrics_listen", "127.0.0.1:@METRICS_PORT@"},
        {"admin_socket", "@DIR@/admin.sock"},
        {"state_dir", "@DIR@/state"},
        // Tests (and CI) run as root, and the temp dirs are root's: serve as root on purpose.
        // privileges_test.cpp covers proxy.user.
        {"allow_root", "yes"}}},
      {"timeouts", {{"client_header", "2s"}, {"upstream_response", "30s"}}},
      {"limits", {{"max_body", "300m"}}},
      {"health_check", {{"interval", "200ms"}, {"timeout", "500ms"}, {"rise", "1"}, {"fall", "2"}}},
      {"supervisor", {{"restart_backoff_initial", "100ms"}, {"stop_grace", "3s"}}},
      {"routing", {{"secret_file", "@DIR@/routing-secret"}}},
  };
  for (int i = 1; i <= workers; ++i) {
    std::string name = "w" + std::to_string(i);
    sections.push_back({"worker " + name,
                        {{"address", "unix:@DIR@/" + name + ".sock"},
                         {"command", "@BIN@/" + std::string(worker_binary)},
                         {"args", "--name {name} --listen {address} --state-dir {state_dir}"}}});
  }
  for (const auto& [dotted, value] : overrides) {
    size_t dot = dotted.rfind('.');
    if (dot == std::string::npos) throw HarnessError("config override without section: " + dotted);
    std::string section_name = dotted.substr(0, dot);
    std::string key = dotted.substr(dot + 1);
    auto section = std::find_if(sections.begin(), sections.end(), [&](const Section& s) { return s.first == section_name; });
    if (section == sections.end()) {
      sections.push_back({section_name, {}});
      section = sections.end() - 1;
    }
    auto field = std::find_if(section->second.begin(), section->second.end(), [&](const auto& f) { return f.first == key; });
    if (field != section->second.end()) {
      field->second = value;
    } else {
      section->second.emplace_back(key, value);
    }
  }
  std::string text = "# written by the integration test harness\n";
  for (const auto& [name, fields] : sections) {
    text += "\n[" + name + "]\n";
    for (const auto& [key, value] : fields) text += key + " = " + value + "\n";
  }
  return text;
}

}  // namespace stickyproxy::integration
