// The integration-test harness: real processes, real sockets, deadlines instead of sleeps.
//
// Everything here is blocking and single-threaded, and knows nothing of Catch2: failures that
// make a test meaningless (a socket error, a timeout, a process that will not start) throw
// HarnessError with a message that says what was being waited for.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/body_pattern.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::integration {

using namespace std::chrono_literals;

class HarnessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The path of a binary of this build tree: build/<name> (stickyproxy, stickyproxy-backend,
// test-worker).
std::string binaryPath(std::string_view name);

// Polls `condition` every `poll` until it returns true (-> true) or `deadline` has passed
// (-> false). The only way tests wait.
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds poll = 20ms);

// How many times slower this build runs than a plain one: 3 under AddressSanitizer, else 1.
// For bounds on how long one client may wait while others load the proxy, never for speed goals.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STICKYPROXY_TESTS_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(STICKYPROXY_TESTS_UNDER_ASAN)
inline constexpr int kBuildSlowdown = 3;
#else
inline constexpr int kBuildSlowdown = 1;
#endif

// A free TCP port on 127.0.0.1: the kernel picks one for a socket bound to port 0, which is then
// closed. Another process could take it in between; tests accept that small race.
uint16_t freePort();

// True when something accepts TCP connections on 127.0.0.1:`port`.
bool canConnect(uint16_t port);

// The temp dir of every test (tests/proxy/test_files.h): configs, logs, sockets and state.
using testing::TempDir;
// Whole-file reads ("" when the file does not exist) and writes (throw when they fail).
using testing::readFile;
using testing::writeFile;
// The last `max_bytes` of a file, for failure messages.
std::string fileTail(const std::string& path, size_t max_bytes = 4000);

// A child process started with fork/exec. Its stdout and stderr go to `log_path` (appended),
// stdin is /dev/null. It leads its own process group and gets SIGKILL if the test process
// dies, so nothing outlives a crashed test run.
class ChildProcess {
 public:
  // `argv[0]` is the program path. `extra_env` entries ("NAME=value") are added to (or replace
  // entries of) this process's environment. Throws HarnessError when fork fails; an exec
  // failure shows as exit status 127 and a line in the log.
  ChildProcess(std::vector<std::string> argv, std::string log_path, std::vector<std::string> extra_env = {});
  // stop(): SIGTERM, then SIGKILL after 5 s.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False once the process has exited (and it is then reaped).
  bool running();
  // Sends `sig` to the process (not its group). Ignored after it was reaped.
  void kill(int sig);
  // Waits up to `deadline` for the exit; returns the waitpid status, or nullopt if still running.
  std::optional<int> waitExit(std::chrono::milliseconds deadline);
  // SIGTERM, wait up to `grace`, then SIGKILL; finally SIGKILLs whatever is left in its process
  // group (e.g. workers of a proxy that did not stop them). Returns the waitpid status.
  int stop(std::chrono::milliseconds grace = 5s);
  // The waitpid status once reaped.
  std::optional<int> exitStatus() const { return status_; }
  const std::string& logPath() const { return log_path_; }
  std::string logText() const { return readFile(log_path_); }

 private:
  void killGroupLeftovers();

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// "exited with status 3" / "killed by signal 9", for messages.
std::string describeWaitStatus(int status);

// Runs build/stickyproxy with `args` (output appended to `log_path`) until it exits by itself;
// returns the waitpid status. Throws HarnessError when it still runs after `deadline`.
int runProxyToExit(const std::vector<std::string>& args, const std::string& log_path,
                   std::chrono::milliseconds deadline = 20s);

// /proc/<pid>/status VmRSS in KiB; -1 when unreadable.
int rssKb(pid_t pid);
// /proc/<pid>/status VmHWM (peak resident set since start) in KiB; -1 when unreadable.
int peakRssKb(pid_t pid);
// The pids whose parent is `parent`, from /proc/*/stat.
std::vector<pid_t> childPids(pid_t parent);
bool processExists(pid_t pid);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 0;
  std::string reason;
  std::string version;  // "HTTP/1.1"
  Headers headers;      // in arrival order, names as sent
  std::string body;     // empty when the body was not kept (see HttpClient::setKeepBodies)
  uint64_t body_bytes = 0;
  std::string body_fnv;  // FNV-1a 64 hex of the body, whether kept or not
  bool chunked = false;
  std::chrono::steady_clock::time_point head_at;  // when the head had arrived

  // First value of `name` (case-insensitive) or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // First value of `name` or "".
  std::string headerOr(std::string_view name, std::string fallback = "") const;
  // Every value of `name`, e.g. each Set-Cookie.
  std::vector<std::string> headerValues(std::string_view name) const;
  size_t headerCount(std::string_view name) const { return headerValues(name).size(); }
  // The value a Set-Cookie of this response gives cookie `name` (attributes dropped), or nullopt.
  std::optional<std::string> setCookieValue(std::string_view name) const;
  // The response announced "Connection: close" (or is HTTP/1.0 without keep-alive).
  bool closesConnection() const;
};

// `count` routing cookie values of sessions that the proxy has not pinned yet: keys drawn from a
// generator seeded with `seed` (the same on every run), signed with the secret every
// ProxyUnderTest is given (routing_cookies.h), so the proxy takes them as its own.
std::vector<std::string> seededSessionKeys(size_t count, uint64_t seed);

// One server-sent event as it arrived.
struct SseEvent {
  std::string data;  // the joined "data:" lines
  std::string raw;   // the event block as received, without the blank line
  std::chrono::steady_clock::time_point arrived;
};

// A blocking HTTP/1.1 client on one connection at a time, with keep-alive: it reconnects when
// the server closed the previous connection (or said it would). Every wait is bounded by the
// receive timeout; a timeout throws HarnessError. Not thread-safe.
class HttpClient {
 public:
  // TCP to 127.0.0.1:`port`.
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = 30s);
  // A Unix socket, e.g. a worker's address.
  static HttpClient unixSocket(std::string path, std::chrono::milliseconds timeout = 30s);
  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&&) = delete;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends a request and reads its response. Adds Host unless `headers` has one, Content-Length
  // when there is a body (or the method is POST/PUT), and the jar's cookies when enabled. The
  // body is sent while reading whatever the server answers meanwhile (an echo cannot deadlock).
  Response request(std::string_view method, std::string_view path, const Headers& headers = {},
                   std::string_view body = {});
  Response get(std::string_view path, const Headers& headers = {}) { return request("GET", path, headers); }

  // Uploads `bytes` bytes of the shared pattern (body_pattern.h) in 64 KiB pieces, either
  // chunked or with Content-Length, never holding the body. If the server answers early (413)
  // the upload stops and that answer is returned.
  Response uploadPattern(std::string_view method, std::string_view path, uint64_t bytes, bool chunked,
                         const Headers& headers = {});

  // Raw access for malformed-input tests: sendRaw writes bytes as given (connecting first if
  // needed); readResponse reads one response (`head_request`: it has no body).
  void sendRaw(std::string_view bytes);
  Response readResponse(bool head_request = false);
  // Waits until the server closes the connection (EOF or reset) -> true; false after `deadline`.
  // Unread response bytes are discarded.
  bool waitForClose(std::chrono::milliseconds deadline);

  // Streaming responses: sends the request (with `body`, e.g. a chat message) and returns once
  // the head has arrived. Then nextEvent() returns each server-sent event when it arrives, and
  // nullopt at the end of the response.
  Response startStream(std::string_view method, std::string_view path, const Headers& headers = {},
                       std::string_view body = {});
  std::optional<SseEvent> nextEvent();

  // The cookie jar, off by default. When on, Set-Cookie values of responses are stored by name
  // (and removed by Max-Age=0), and sent back as one Cookie field.
  void useCookieJar(bool on = true) { jar_enabled_ = on; }
  std::optional<std::string> cookie(const std::string& name) const;
  void setCookie(const std::string& name, std::string value) { jar_[name] = std::move(value); }
  void clearCookies() { jar_.clear(); }
  // The whole jar, e.g. to hand a session's cookies to a client on another connection.
  const std::map<std::string, std::string>& cookies() const { return jar_; }
  void setCookies(std::map<std::string, std::string> jar) { jar_ = std::move(jar); }

  // When false, response bodies are only counted and hashed (Response::body stays empty).
  void setKeepBodies(bool keep) { keep_bodies_ = keep; }
  void setTimeout(std::chrono::milliseconds timeout);

  // Closes the connection; the next request opens a new one.
  void close();
  // SO_RCVBUF for the connections opened from now on (0: the system's default). A small buffer
  // makes the server see a slow reader.
  void setReceiveBuffer(int bytes) { receive_buffer_ = bytes; }
  // Bytes received on the connection and not yet read (FIONREAD); 0 when not connected.
  size_t bytesWaiting() const;
  bool connected() const { return fd_ >= 0; }
  // How many connections this client has opened: 1 after any number of kept-alive requests.
  int connectionsOpened() const { return connections_opened_; }

 private:
  class Parser;
  HttpClient(std::string unix_path, uint16_t port, std::chrono::milliseconds timeout);
  void ensureConnected();
  void connect();
  std::string requestHead(std::string_view method, std::string_view path, const Headers& headers,
                          std::optional<uint64_t> content_length, bool chunked);
  // Sends `data` while feeding whatever arrives to the parser. Returns false when the server
  // closed or reset the connection (sending stops; its answer may already be in).
  bool transmit(std::string_view data);
  // Reads once (waiting up to the timeout) and feeds the parser. False at EOF.
  bool readSome();
  Response finishResponse();
  void beginResponse(bool head_request);
  void rememberCookies(const Response& response);

  std::string unix_path_;
  uint16_t port_ = 0;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  int receive_buffer_ = 0;
  int connections_opened_ = 0;
  bool reuse_ok_ = false;  // the last response allows another request on this connection
  bool send_failed_ = false;
  bool eof_ = false;
  bool jar_enabled_ = false;
  bool keep_bodies_ = true;
  std::map<std::string, std::string> jar_;
  std::string input_;  // received, not yet parsed
  std::unique_ptr<Parser> parser_;
  std::string sse_buffer_;
  std::chrono::steady_clock::time_point last_read_at_;
};

// A worker binary (test-worker or stickyproxy-backend) started directly on 127.0.0.1:<free
// port>, ready (GET /ping answered) when the constructor returns.
class WorkerUnderTest {
 public:
  WorkerUnderTest(const TempDir& dir, std::string_view binary, std::string name,
                  std::vector<std::string> extra_args = {});
  // The same on a given port, e.g. to restart an external worker at the address a proxy knows.
  WorkerUnderTest(const TempDir& dir, std::string_view binary, std::string name, uint16_t port,
                  std::vector<std::string> extra_args);
  uint16_t port() const { return port_; }
  pid_t pid() const { return process_.pid(); }
  ChildProcess& process() { return process_; }
  HttpClient client(std::chrono::milliseconds timeout = 30s) const { return HttpClient(port_, timeout); }

 private:
  static std::vector<std::string> argv(const TempDir& dir, std::string_view binary, const std::string& name,
                                       uint16_t port, std::vector<std::string> extra_args);
  uint16_t port_;
  ChildProcess process_;
};

// The routing cookie's name: the proxy's default, which ProxyUnderTest::standardConfig() keeps.
inline const std::string kCookieName = "stickyproxy";

// A blocking client of the proxy's admin socket: one command line, one answer (which ends with
// an empty line). Every wait is bounded by a deadline.
class AdminClient {
 public:
  // Connects to the Unix socket `path`; throws HarnessError when nothing listens there.
  explicit AdminClient(const std::string& path);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // Sends `bytes` as they are; throws HarnessError when the server has gone.
  void sendRaw(const std::string& bytes);
  // The next answer, without its closing empty line; throws HarnessError when none is complete
  // within `deadline`.
  std::string readAnswer(std::chrono::milliseconds deadline = 30s);
  // Sends `line` and returns its answer.
  std::string command(const std::string& line, std::chrono::milliseconds deadline = 30s);
  // True once the server closed the connection; unread bytes are kept in input().
  bool waitForClose(std::chrono::milliseconds deadline);
  const std::string& input() const { return input_; }
  // Shrinks the kernel's receive buffer, so unread answers pile up on the server.
  void setReceiveBuffer(int bytes);

 private:
  // Reads once; false at EOF or when `until` has passed.
  bool readSome(std::chrono::steady_clock::time_point until);

  int fd_ = -1;
  std::string input_;
  bool eof_ = false;
};

// One worker as the admin command "show workers json" reports it.
struct WorkerStatus {
  std::string name;
  std::string state;  // "starting", "ready", "draining", "drained" or "down"
  pid_t pid = 0;      // 0 while no process runs, and always for an external worker
  bool admin_draining = false;
  uint64_t sessions = 0;
  uint64_t in_flight = 0;
  uint64_t queued = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t restarts = 0;  // exits of its process that the proxy did not ask for
};

// One line of the proxy's access log (stdout), as README.md describes it. Quoted fields keep
// their escapes.
struct AccessLogLine {
  std::string client;
  std::string method;
  std::string path;
  int status = 0;
  std::string worker;  // "-" when no worker was chosen
  bool repin = false;
  std::string key;     // the short key hash, or "-"
  std::string previous_worker;  // prev=: the X-Sticky-Previous-Worker sent; empty when absent
  std::string note;    // empty when absent
  std::string raw;     // the whole line
};

// The access-log lines in `log_text`, in order; other lines (errors, notices) are skipped.
std::vector<AccessLogLine> parseAccessLog(const std::string& log_text);

// build/stickyproxy run with a config written by the test.
//
// The config template may use these placeholders (the config's own {name}, {address} and
// {state_dir} are left alone):
//   @PORT@ the proxy's listen port      @METRICS_PORT@ the metrics port
//   @DIR@  the test's temp directory    @BIN@ the build directory (binaries)
class ProxyUnderTest {
 public:
  // Writes the config (not yet started). Ports are picked free.
  explicit ProxyUnderTest(std::string config_template);
  // stop() if running.
  ~ProxyUnderTest();
  ProxyUnderTest(const ProxyUnderTest&) = delete;
  ProxyUnderTest& operator=(const ProxyUnderTest&) = delete;

  // Starts the proxy and waits until GET /ping through it answers 200 (`deadline`). Throws
  // HarnessError with the log's tail otherwise.
  void start(std::chrono::milliseconds deadline = 20s);
  // "NAME=value" entries added to the environment the proxy is started with from now on.
  void setEnvironment(std::vector<std::string> extra_env) { environment_ = std::move(extra_env); }
  // Rewrites the config file from a new template (same ports and directory).
  void rewriteConfig(std::string config_template);
  // SIGHUP by pid.
  void reload();
  // SIGTERM by pid and wait (SIGKILL after `grace`); returns the waitpid status.
  int stop(std::chrono::milliseconds grace = 10s);
  bool running() { return process_ && process_->running(); }

  uint16_t port() const { return port_; }
  uint16_t metricsPort() const { return metrics_port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  ChildProcess& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  const std::string& configPath() const { return config_path_; }
  const std::string& logPath() const { return log_path_; }
  std::string logText() const { return readFile(log_path_); }
  // The config as written (placeholders filled).
  std::string configText() const { return readFile(config_path_); }
  HttpClient client(std::chrono::milliseconds timeout = 30s) const { return HttpClient(port_, timeout); }
  // The proxy's direct children (its workers).
  std::vector<pid_t> childPids() const { return integration::childPids(pid()); }
  // Workers that were still running `grace` after stop() had the proxy exit (then SIGKILLed).
  const std::vector<pid_t>& leftoverWorkers() const { return leftover_workers_; }

  // The admin socket standardConfig() configures: dir()/admin.sock.
  std::string adminSocketPath() const { return dir_.file("admin.sock"); }
  // Sends `line` on a new admin connection and returns the answer.
  std::string adminCommand(const std::string& line, std::chrono::milliseconds deadline = 30s) const;
  // Every worker, as "show workers json" reports them. Throws HarnessError when the admin socket
  // does not answer with a worker list.
  std::vector<WorkerStatus> workerStatuses() const;
  // Worker `name`, as "show workers json" reports it; throws HarnessError when there is none.
  WorkerStatus workerStatus(const std::string& name) const;
  // Waits until worker `name` is reported and its status passes `condition` (-> true), or
  // `deadline` has passed (-> false). Asks the admin socket every 20 ms: worker states are
  // read, never inferred from the wording of the log.
  bool waitForWorker(const std::string& name, const std::function<bool(const WorkerStatus&)>& condition,
                     std::chrono::milliseconds deadline = 10s) const;
  // Waits until worker `name` is in `state` ("ready", "down", ...).
  bool waitForWorkerState(const std::string& name, std::string_view state,
                          std::chrono::milliseconds deadline = 10s) const;

  // SIGKILLs the process of the supervised worker `name` (by the pid the proxy reports) and
  // waits until the proxy has seen it exit: its restart count went up, so its sessions were
  // re-pinned and its restart is under way. Returns the pid killed. Throws HarnessError when
  // the worker runs no process or the proxy does not notice within `deadline`.
  pid_t killWorker(const std::string& name, std::chrono::milliseconds deadline = 10s);
  // Asks GET /whoami as session `key` (its routing cookie) to learn which worker serves it,
  // then kills that worker as killWorker() does. Returns the worker's name.
  std::string killSessionWorker(const std::string& key, std::chrono::milliseconds deadline = 10s);

  // A config template for tests: workers w1..wN running `worker_binary` (a build-tree name) on
  // Unix sockets in the temp dir, with short health-check and restart intervals. `overrides`
  // ("section.key", value) replace or add keys, e.g. {"limits.max_body", "10m"}; a worker's
  // section is "worker w2".
  static std::string standardConfig(int workers = 4, std::string_view worker_binary = "test-worker",
                                    const std::vector<std::pair<std::string, std::string>>& overrides = {});

 private:
  std::string fill(const std::string& config_template) const;

  TempDir dir_{"stickyproxy-it"};
  uint16_t port_;
  uint16_t metrics_port_;
  std::string config_path_;
  std::string log_path_;
  std::unique_ptr<ChildProcess> process_;
  std::vector<std::string> environment_;
  std::vector<pid_t> leftover_workers_;
};

}  // namespace stickyproxy::integration
