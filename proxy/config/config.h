// The proxy's configuration: the parsed, validated form of a stickyproxy config file.
//
// The file format is documented in conf/README.md. Every value here has already passed
// validation when a Config is handed out by loadConfig(): the running code may rely on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/http/head_classifier.h"

// Declared at global scope so that Cidr::contains names ::sockaddr whatever the include order.
struct sockaddr;

namespace stickyproxy {

using Duration = std::chrono::milliseconds;

// Where a listener or a worker lives: a TCP host:port or a Unix socket path.
struct Address {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: IPv4 or IPv6 literal ("0.0.0.0", "127.0.0.1", "::1").
  uint16_t port = 0; // kTcp: 0 lets the kernel choose (tests use it).
  std::string path;  // kUnix: absolute path (relative paths are resolved at load).

  // "unix:/run/w1.sock" or "127.0.0.1:8081" or "[::1]:8081".
  std::string toString() const;
  bool operator==(const Address&) const = default;
};

// An IPv4 or IPv6 network in CIDR form, e.g. 10.0.0.0/8; a bare address is a /32 or /128.
struct Cidr {
  int family = 0;                 // AF_INET or AF_INET6.
  uint8_t bytes[16] = {};         // Network address in network byte order.
  int prefix_len = 0;
  std::string text;               // As written in the file, for messages.

  // True when `sockaddr` (a sockaddr_in or sockaddr_in6) lies inside this network.
  // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 networks.
  bool contains(const struct sockaddr* sockaddr) const;
  bool operator==(const Cidr& other) const { return text == other.text; }
};

struct TimeoutsConfig {
  Duration client_header{std::chrono::seconds(10)};      // whole request head must arrive -> 408
  Duration client_body_idle{std::chrono::seconds(60)};   // no body byte for this long -> 408
  Duration keepalive_idle{std::chrono::seconds(75)};     // idle client keep-alive -> close
  Duration upstream_connect{std::chrono::seconds(5)};    // connect to a worker -> 504
  Duration upstream_response{std::chrono::seconds(120)}; // response head (and each body gap) -> 504
  Duration upstream_idle{std::chrono::seconds(30)};      // pooled idle upstream connection -> close
  Duration queue{std::chrono::seconds(30)};              // wait for an admission slot -> 503
  Duration admin_idle{std::chrono::seconds(60)};         // admin-socket client sends no command -> close
  // A client takes nothing of a response for this long while the proxy waits for its write queue
  // to drain (from over write_buffer_high to a quarter of it) -> close.
  Duration client_send_idle{std::chrono::seconds(60)};
  bool operator==(const TimeoutsConfig&) const = default;
};

struct LimitsConfig {
  uint32_t max_request_line = 8 * 1024;        // bytes of method + target + version -> 414
  uint32_t max_header_bytes = 32 * 1024;       // bytes of the whole head -> 431
  uint32_t max_headers = 100;                  // header field count -> 431
  uint64_t max_body = 1024ull * 1024 * 1024;   // request body bytes -> 413 (0 = unlimited)
  uint32_t max_client_connections = 10000;     // further accepts wait in the kernel backlog
  uint32_t worker_max_in_flight = 64;          // requests at once per worker
  uint32_t worker_queue = 256;                 // waiting behind them per worker, then 503
  uint32_t upstream_idle_per_worker = 32;      // keep-alive connections kept per worker
  uint32_t write_buffer_high = 256 * 1024;     // stop reading the other side above this
  // Request bodies up to this size are kept until the response head arrives, so that the
  // request can be replayed on another worker (0: no body is kept, bodied requests are not replayed).
  uint64_t retry_buffer = 8ull * 1024 * 1024;
  // What all requests' kept bodies may hold together; a body that would pass it is not kept
  // (its request is not replayed), as one over retry_buffer.
  uint64_t retry_buffer_total = 256ull * 1024 * 1024;
  // Per client address (an IPv6 client per /64): open connections (not counted for
  // trusted_proxies peers, whose connections carry many clients), and requests per rate period
  // (a token bucket holding that many; behind a trusted proxy, per X-Forwarded-For client, and
  // not for the proxy's own requests). Over them: 429 with Retry-After. 0: no limit.
  uint32_t per_client_connections = 0;
  uint32_t per_client_rate = 0;
  Duration per_client_rate_period{std::chrono::seconds(1)};
  uint32_t client_table_size = 100000;  // clients remembered at most (least recently seen idle ones go first)
  bool operator==(const LimitsConfig&) const = default;
};

// [tls]: HTTPS on its own listener, beside the plain one.
struct TlsConfig {
  bool enabled = false;      // the file has a [tls] section
  Address listen;
  std::string certificate;   // PEM chain, leaf first
  std::string key;           // PEM private key of `certificate`
  // Further "chain.pem:key.pem" pairs chosen by SNI: a client naming one of a certificate's
  // DNS names gets that certificate, any other client the first one.
  std::vector<std::pair<std::string, std::string>> sni_certificates;
  std::string min_version = "TLSv1.2";  // "TLSv1.2" or "TLSv1.3"
  // TLS 1.2 cipher list (OpenSSL syntax) and TLS 1.3 suites; forward secrecy and AEAD only.
  std::string ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  std::string ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
  bool session_tickets = true;
  Duration ticket_key_rotation{std::chrono::hours(12)};  // a new ticket key this often
  bool redirect_http = false;  // the plain listener answers 308 to the https:// URL
  // Strict-Transport-Security max-age added to responses over TLS (unless the worker sent
  // one); 0: none.
  Duration hsts{0};
  bool operator==(const TlsConfig&) const = default;
};

// [compression]: gzip for worker responses the client accepts it for and the worker sent
// uncompressed (proxy/core/response_compressor.h).
struct CompressionConfig {
  bool enabled = false;
  // Media types (lower case, no parameters) worth compressing.
  std::vector<std::string> types = {"text/html", "text/css", "text/plain", "text/csv", "text/javascript",
                                    "application/javascript", "application/json", "image/svg+xml"};
  uint64_t min_size = 1024;   // bytes; a response known to be smaller goes as it is
  uint32_t level = 1;         // zlib 1 (fastest) to 9 (smallest), or 0: one pass with fixed codes
  uint32_t max_streams = 256;  // responses compressed at once (about 270 KiB of zlib state each)
  bool operator==(const CompressionConfig&) const = default;
};

enum class KeySource {
  kProxyCookie,  // route by the proxy's own cookie (default)
  kAppCookie,    // route by the app's cookie, falling back to the proxy cookie
};

struct RoutingConfig {
  std::string cookie_name = "stickyproxy";
  Duration cookie_max_age{std::chrono::hours(24 * 30)};  // Max-Age of the Set-Cookie
  KeySource key_source = KeySource::kProxyCookie;
  std::string app_cookie_name;                   // required when key_source == kAppCookie
  uint32_t virtual_nodes = 1024;                 // ring points per worker
  Duration moved_key_idle{std::chrono::hours(24 * 7)};  // moved keys unused this long expire
  Duration session_idle{std::chrono::minutes(30)};      // a session counts as active this long
  // A draining worker is drained once no session pinned to it was seen for this long.
  Duration drain_idle{std::chrono::seconds(60)};
  // The routing cookie's secrets (one per line; the first signs). Empty: <state_dir>/routing-secret,
  // made on first start.
  std::string secret_file;
  // Ceiling on the sessions the proxy keeps in memory (recent and moved ones together).
  uint32_t max_sessions = 500000;
  // Route the previous version's unsigned 32-hex cookies by the ring (and re-issue them signed).
  bool accept_unsigned_keys = true;
  bool operator==(const RoutingConfig&) const = default;
};

struct SupervisorConfig {
  Duration restart_backoff_initial{std::chrono::milliseconds(500)};
  Duration restart_backoff_max{std::chrono::seconds(30)};
  Duration stop_grace{std::chrono::seconds(10)};       // SIGTERM -> wait -> SIGKILL
  Duration startup_timeout{std::chrono::seconds(30)};  // workers must be ready before listening
  Duration stable_after{std::chrono::seconds(10)};     // up this long resets the backoff
  bool operator==(const SupervisorConfig&) const = default;
};

struct HealthCheckConfig {
  std::string path = "/ping";
  Duration interval{std::chrono::seconds(2)};
  Duration timeout{std::chrono::seconds(1)};
  uint32_t rise = 2;  // consecutive successes to mark a down worker up
  uint32_t fall = 3;  // consecutive failures to mark an up worker down
  bool operator==(const HealthCheckConfig&) const = default;
};

struct WorkerConfig {
  std::string name;  // [A-Za-z0-9_-]{1,32}; unique
  Address address;
  // Supervised workers have a command; external ones (other hosts) do not.
  // In `command`, `args` and `env` values the placeholders {name}, {address}, {host},
  // {port}, {path} and {state_dir} are replaced when the worker is started.
  std::string command;  // empty = external worker
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool supervised() const { return !command.empty(); }
  bool operator==(const WorkerConfig&) const = default;
};

struct Config {
  std::string source_path;  // the file this was loaded from

  Address listen;
  Address metrics_listen;
  std::string admin_socket;  // absolute path
  std::string admin_group;   // empty: the socket is the proxy user's alone (0600); else 0660 for this group
  std::string state_dir;     // absolute path
  std::vector<Cidr> trusted_proxies;  // X-Forwarded-* is believed only from these peers
  // false ("access_log = errors"): only the lines of answers the proxy made itself (refused,
  // timed out, 5xx, client gone: those with a note=) are written, not every request's.
  bool access_log_all = true;
  // Replay a request with a method that is not idempotent (POST, PATCH) when its worker's
  // process exited before answering (true: "on_worker_exit"), or never (false: "never").
  // Requests that never reached a worker are always replayed.
  bool retry_non_idempotent = false;
  // What happens to requests the head classifier finds Severe or Ambiguous
  // (proxy/http/head_classifier.h).
  DesyncMode desync_mode = DesyncMode::kDefensive;
  // The account the proxy serves as, after binding its sockets as root, and its workers run
  // as. Empty: stay who started it (refused when that is root, unless allow_root).
  std::string user;
  std::string group;  // empty: the user's primary group
  bool allow_root = false;

  TimeoutsConfig timeouts;
  LimitsConfig limits;
  RoutingConfig routing;
  SupervisorConfig supervisor;
  HealthCheckConfig health_check;
  TlsConfig tls;
  CompressionConfig compression;
  std::vector<WorkerConfig> workers;  // in file order; at least one

  const WorkerConfig* findWorker(const std::string& name) const;
};

// One problem found in a config file. `line` is 1-based; 0 when the problem is not tied to
// a line (e.g. a missing required key). `key` is "section.key" (or "" for syntax errors).
struct ConfigError {
  std::string file;
  int line = 0;
  std::string key;
  std::string message;

  // "conf/prod.conf:12: routing.cookie_name: must be a valid cookie name"
  std::string toString() const;
};

struct ConfigLoadResult {
  std::optional<Config> config;     // set when errors is empty
  std::vector<ConfigError> errors;  // every problem found, by line (line 0 first)
};

// Reads and validates the config file at `path`. Never throws. Relative paths inside the
// file (worker commands, sockets, state_dir) are resolved against the file's directory.
ConfigLoadResult loadConfig(const std::string& path);

// Same as loadConfig but from text already in memory; `path` is used for messages and
// for resolving relative paths.
ConfigLoadResult parseConfig(const std::string& text, const std::string& path);

}  // namespace stickyproxy
