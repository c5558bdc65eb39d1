#include "proxy/config/config.h"

#include <grp.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string_view>
#include <system_error>

#include "proxy/config/value_parser.h"
#include "proxy/http/http_message.h"

namespace stickyproxy {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxLineLength = 4096;
constexpr size_t kMaxFileSize = 1024 * 1024;
// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxUnixPathLength = sizeof(sockaddr_un{}.sun_path) - 1;
constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

using Problems = std::vector<std::string>;

// What a key's setter may change. `worker` is set only inside a [worker NAME] section.
struct Target {
  Config& config;
  WorkerConfig* worker;
  const fs::path& base_dir;
  int line;
  std::map<std::string, int>* env_lines;  // per worker: variable name -> line that set it
};

// Parses `value` into its field of `target`, or appends one message per problem found.
using Setter = void (*)(Target& target, std::string_view value, Problems& problems);

struct KeySpec {
  std::string_view name;
  Setter set;
};

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool isSpace(char c) { return c == ' ' || c == '\t'; }

// "10s" rather than "10000ms": the largest unit that represents `duration` exactly.
std::string formatDuration(Duration duration) {
  struct Unit {
    int64_t millis;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {24 * 60 * 60 * 1000, "d"}, {60 * 60 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};
  int64_t millis = duration.count();
  for (const Unit& unit : kUnits) {
    if (millis != 0 && millis % unit.millis == 0) {
      return std::to_string(millis / unit.millis) + unit.suffix;
    }
  }
  return std::to_string(millis) + "ms";
}

// Makes `value` absolute against the config file's directory, without touching the file
// system (so it works for paths that do not exist yet). No trailing separator.
std::string resolvePath(const fs::path& base_dir, std::string_view value) {
  fs::path path(value);
  if (path.is_relative()) path = base_dir / path;
  std::string text = path.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

bool checkUnixPathLength(const std::string& path, Problems& problems) {
  if (path.size() <= kMaxUnixPathLength) return true;
  problems.push_back("unix socket path " + inQuotes(path) + " is " + std::to_string(path.size()) +
                     " bytes long; the limit is " + std::to_string(kMaxUnixPathLength));
  return false;
}

// ---- Setters shared by many keys ----

void setDuration(std::string_view value, Duration& out, Problems& problems) {
  std::string error;
  std::optional<Duration> duration = parseDuration(value, &error);
  if (!duration) {
    problems.push_back(error);
  } else if (duration->count() == 0) {
    problems.push_back(inQuotes(value) + " must be greater than zero");
  } else {
    out = *duration;
  }
}

template <typename T>
void assignInRange(std::string_view value, uint64_t number, uint64_t min, uint64_t max, T& out,
                   Problems& problems) {
  if (number < min || number > max) {
    problems.push_back(inQuotes(value) + " is out of range (" + std::to_string(min) + ".." +
                       std::to_string(max) + ")");
    return;
  }
  out = static_cast<T>(number);
}

template <typename T>
void setSize(std::string_view value, uint64_t min, T& out, Problems& problems) {
  std::string error;
  std::optional<uint64_t> size = parseSize(value, &error);
  if (!size) {
    problems.push_back(error);
    return;
  }
  assignInRange(value, *size, min, std::numeric_limits<T>::max(), out, problems);
}

template <typename T>
void setInteger(std::string_view value, uint64_t min, uint64_t max, T& out, Problems& problems) {
  std::string error;
  std::optional<uint64_t> number = parseUnsigned(value, &error);
  if (!number) {
    problems.push_back(error);
    return;
  }
  assignInRange(value, *number, min, max, out, problems);
}

void setListenAddress(std::string_view value, Address& out, Problems& problems) {
  std::string error;
  std::optional<Address> address = parseAddress(value, &error);
  if (!address) {
    problems.push_back(error);
  } else if (address->kind != Address::Kind::kTcp) {
    problems.push_back(inQuotes(value) + " is not a valid address here: expected host:port (TCP)");
  } else {
    out = *address;
  }
}

void setPath(Target& target, std::string_view value, std::string& out, Problems& problems) {
  if (value.empty()) {
    problems.push_back("empty path");
    return;
  }
  out = resolvePath(target.base_dir, value);
}

void setCookieName(std::string_view value, std::string& out, Problems& problems) {
  if (!isToken(value)) {
    problems.push_back(inQuotes(value) + " is not a valid cookie name (RFC 6265 token)");
    return;
  }
  out = std::string(value);
}

// ---- Keys that parse a value into one field ----
//
// `Path` leads from Config to the field: &Config::listen, or a section and its member such as
// &Config::limits, &LimitsConfig::max_body. A table row then names its field just once.

template <auto... Path>
auto& fieldOf(Target& target) {
  return (target.config .* ... .* Path);
}

template <auto... Path>
void durationKey(Target& target, std::string_view value, Problems& problems) {
  setDuration(value, fieldOf<Path...>(target), problems);
}

template <uint64_t kMin, auto... Path>
void sizeKey(Target& target, std::string_view value, Problems& problems) {
  setSize(value, kMin, fieldOf<Path...>(target), problems);
}

template <uint64_t kMin, uint64_t kMax, auto... Path>
void integerKey(Target& target, std::string_view value, Problems& problems) {
  setInteger(value, kMin, kMax, fieldOf<Path...>(target), problems);
}

template <auto... Path>
void listenKey(Target& target, std::string_view value, Problems& problems) {
  setListenAddress(value, fieldOf<Path...>(target), problems);
}

template <auto... Path>
void pathKey(Target& target, std::string_view value, Problems& problems) {
  setPath(target, value, fieldOf<Path...>(target), problems);
}

template <auto... Path>
void cookieNameKey(Target& target, std::string_view value, Problems& problems) {
  setCookieName(value, fieldOf<Path...>(target), problems);
}

// ---- [proxy] ----

void setTrustedProxies(Target& target, std::string_view value, Problems& problems) {
  std::vector<Cidr> cidrs;
  if (!value.empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = value.find(',', start);
      std::string_view item = trimOws(value.substr(start, comma - start));
      std::string error;
      if (item.empty()) {
        problems.push_back("empty entry in the list " + inQuotes(value));
      } else if (std::optional<Cidr> cidr = parseCidr(item, &error)) {
        cidrs.push_back(*cidr);
      } else {
        problems.push_back(error);
      }
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  target.config.trusted_proxies = std::move(cidrs);
}

void setAdminSocket(Target& target, std::string_view value, Problems& problems) {
  std::string path;
  setPath(target, value, path, problems);
  if (!path.empty() && checkUnixPathLength(path, problems)) target.config.admin_socket = path;
}

// A group that exists on this host: the admin socket is handed to it (mode 0660).
void setAdminGroup(Target& target, std::string_view value, Problems& problems) {
  std::string name(value);
  bool valid = !name.empty() && name.size() <= 32 && name.front() != '-';
  for (char c : name) {
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.');
  }
  if (!valid) {
    problems.push_back(inQuotes(name) + " is not a group name");
    return;
  }
  if (::getgrnam(name.c_str()) == nullptr) {
    problems.push_back("no group " + inQuotes(name) + " on this host");
    return;
  }
  target.config.admin_group = name;
}

void setAccessLog(Target& target, std::string_view value, Problems& problems) {
  if (value == "all" || value == "errors") {
    target.config.access_log_all = value == "all";
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: all, errors");
  }
}

void setRetryNonIdempotent(Target& target, std::string_view value, Problems& problems) {
  if (value == "on_worker_exit" || value == "never") {
    target.config.retry_non_idempotent = value == "on_worker_exit";
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: on_worker_exit, never");
  }
}

void setDesyncMode(Target& target, std::string_view value, Problems& problems) {
  if (value == "defensive") {
    target.config.desync_mode = DesyncMode::kDefensive;
  } else if (value == "strictest") {
    target.config.desync_mode = DesyncMode::kStrictest;
  } else if (value == "monitor") {
    target.config.desync_mode = DesyncMode::kMonitor;
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: defensive, strictest, monitor");
  }
}

// "yes" or "no" into a bool.
template <auto... Path>
void yesNoKey(Target& target, std::string_view value, Problems& problems) {
  if (value == "yes" || value == "no") {
    fieldOf<Path...>(target) = value == "yes";
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: yes, no");
  }
}

// A user or group name as the system accepts it (checked against the account database when
// the proxy starts, not here: a config may be checked on another host).
template <auto... Path>
void accountKey(Target& target, std::string_view value, Problems& problems) {
  bool valid = !value.empty() && value.size() <= 32 && value.front() != '-';
  for (char c : value) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!valid) {
    problems.push_back(inQuotes(std::string(value)) + " is not a valid user or group name");
    return;
  }
  fieldOf<Path...>(target) = std::string(value);
}

const KeySpec kProxyKeys[] = {
    {"listen", listenKey<&Config::listen>},
    {"metrics_listen", listenKey<&Config::metrics_listen>},
    {"admin_socket", setAdminSocket},
    {"admin_group", setAdminGroup},
    {"state_dir", pathKey<&Config::state_dir>},
    {"trusted_proxies", setTrustedProxies},
    {"access_log", setAccessLog},
    {"retry_non_idempotent", setRetryNonIdempotent},
    {"desync_mode", setDesyncMode},
    {"user", accountKey<&Config::user>},
    {"group", accountKey<&Config::group>},
    {"allow_root", yesNoKey<&Config::allow_root>},
};

// ---- [timeouts] ----

const KeySpec kTimeoutKeys[] = {
    {"client_header", durationKey<&Config::timeouts, &TimeoutsConfig::client_header>},
    {"client_body_idle", durationKey<&Config::timeouts, &TimeoutsConfig::client_body_idle>},
    {"keepalive_idle", durationKey<&Config::timeouts, &TimeoutsConfig::keepalive_idle>},
    {"upstream_connect", durationKey<&Config::timeouts, &TimeoutsConfig::upstream_connect>},
    {"upstream_response", durationKey<&Config::timeouts, &TimeoutsConfig::upstream_response>},
    {"upstream_idle", durationKey<&Config::timeouts, &TimeoutsConfig::upstream_idle>},
    {"queue", durationKey<&Config::timeouts, &TimeoutsConfig::queue>},
    {"admin_idle", durationKey<&Config::timeouts, &TimeoutsConfig::admin_idle>},
    {"client_send_idle", durationKey<&Config::timeouts, &TimeoutsConfig::client_send_idle>},
};

// ---- [limits] ----

// "20" (per second) or "COUNT/DURATION" ("300/1m").
void setPerClientRate(Target& target, std::string_view value, Problems& problems) {
  LimitsConfig& limits = target.config.limits;
  size_t slash = value.find('/');
  Duration period = std::chrono::seconds(1);
  if (slash != std::string_view::npos) {
    std::string error;
    std::optional<Duration> parsed = parseDuration(value.substr(slash + 1), &error);
    if (!parsed) {
      problems.push_back(error);
      return;
    }
    if (parsed->count() == 0) {
      problems.push_back(inQuotes(value) + ": the period must be greater than zero");
      return;
    }
    period = *parsed;
  }
  uint32_t count = 0;
  size_t before = problems.size();
  setInteger(value.substr(0, slash), 0, kMaxU32, count, problems);
  if (problems.size() != before) return;
  limits.per_client_rate = count;
  limits.per_client_rate_period = period;
}

const KeySpec kLimitKeys[] = {
    {"max_request_line", sizeKey<1, &Config::limits, &LimitsConfig::max_request_line>},
    {"max_header_bytes", sizeKey<1, &Config::limits, &LimitsConfig::max_header_bytes>},
    {"max_headers", integerKey<1, kMaxU32, &Config::limits, &LimitsConfig::max_headers>},
    {"max_body", sizeKey<0, &Config::limits, &LimitsConfig::max_body>},
    {"max_client_connections",
     integerKey<1, kMaxU32, &Config::limits, &LimitsConfig::max_client_connections>},
    {"worker_max_in_flight",
     integerKey<1, kMaxU32, &Config::limits, &LimitsConfig::worker_max_in_flight>},
    {"worker_queue", integerKey<0, kMaxU32, &Config::limits, &LimitsConfig::worker_queue>},
    {"upstream_idle_per_worker",
     integerKey<0, kMaxU32, &Config::limits, &LimitsConfig::upstream_idle_per_worker>},
    {"write_buffer_high", sizeKey<1, &Config::limits, &LimitsConfig::write_buffer_high>},
    {"retry_buffer", sizeKey<0, &Config::limits, &LimitsConfig::retry_buffer>},
    {"retry_buffer_total", sizeKey<0, &Config::limits, &LimitsConfig::retry_buffer_total>},
    {"per_client_connections", integerKey<0, kMaxU32, &Config::limits, &LimitsConfig::per_client_connections>},
    {"per_client_rate", setPerClientRate},
    {"client_table_size", integerKey<1, kMaxU32, &Config::limits, &LimitsConfig::client_table_size>},
};

// ---- [tls] ----

void setSniCertificates(Target& target, std::string_view value, Problems& problems) {
  auto& pairs = target.config.tls.sni_certificates;
  pairs.clear();
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    std::string_view item = trimOws(value.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (!item.empty()) {
      size_t colon = item.find(':');
      if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
        problems.push_back(inQuotes(std::string(item)) + " is not chain.pem:key.pem");
      } else {
        pairs.emplace_back(resolvePath(target.base_dir, item.substr(0, colon)),
                           resolvePath(target.base_dir, item.substr(colon + 1)));
      }
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

void setTlsMinVersion(Target& target, std::string_view value, Problems& problems) {
  if (value == "TLSv1.2" || value == "TLSv1.3") {
    target.config.tls.min_version = std::string(value);
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: TLSv1.2, TLSv1.3");
  }
}

template <auto... Path>
void textKey(Target& target, std::string_view value, Problems& problems) {
  if (value.empty()) {
    problems.push_back("empty value");
    return;
  }
  fieldOf<Path...>(target) = std::string(value);
}

const KeySpec kTlsKeys[] = {
    {"listen", listenKey<&Config::tls, &TlsConfig::listen>},
    {"certificate", pathKey<&Config::tls, &TlsConfig::certificate>},
    {"key", pathKey<&Config::tls, &TlsConfig::key>},
    {"sni_certificates", setSniCertificates},
    {"min_version", setTlsMinVersion},
    {"ciphers", textKey<&Config::tls, &TlsConfig::ciphers>},
    {"ciphersuites", textKey<&Config::tls, &TlsConfig::ciphersuites>},
    {"session_tickets", yesNoKey<&Config::tls, &TlsConfig::session_tickets>},
    {"ticket_key_rotation", durationKey<&Config::tls, &TlsConfig::ticket_key_rotation>},
    {"redirect_http", yesNoKey<&Config::tls, &TlsConfig::redirect_http>},
    {"hsts", durationKey<&Config::tls, &TlsConfig::hsts>},
};

// ---- [routing] ----

void setKeySource(Target& target, std::string_view value, Problems& problems) {
  if (value == "proxy_cookie") {
    target.config.routing.key_source = KeySource::kProxyCookie;
  } else if (value == "app_cookie") {
    target.config.routing.key_source = KeySource::kAppCookie;
  } else {
    problems.push_back(inQuotes(value) + " is not a valid key source (use proxy_cookie or app_cookie)");
  }
}

void setAcceptUnsignedKeys(Target& target, std::string_view value, Problems& problems) {
  if (value == "yes" || value == "no") {
    target.config.routing.accept_unsigned_keys = value == "yes";
  } else {
    problems.push_back(inQuotes(std::string(value)) + " is not one of: yes, no");
  }
}

const KeySpec kRoutingKeys[] = {
    {"cookie_name", cookieNameKey<&Config::routing, &RoutingConfig::cookie_name>},
    {"cookie_max_age", durationKey<&Config::routing, &RoutingConfig::cookie_max_age>},
    {"key_source", setKeySource},
    {"app_cookie_name", cookieNameKey<&Config::routing, &RoutingConfig::app_cookie_name>},
    {"virtual_nodes", integerKey<1, 10000, &Config::routing, &RoutingConfig::virtual_nodes>},
    {"moved_key_idle", durationKey<&Config::routing, &RoutingConfig::moved_key_idle>},
    {"session_idle", durationKey<&Config::routing, &RoutingConfig::session_idle>},
    {"drain_idle", durationKey<&Config::routing, &RoutingConfig::drain_idle>},
    {"secret_file", pathKey<&Config::routing, &RoutingConfig::secret_file>},
    {"max_sessions", integerKey<1000, 100000000, &Config::routing, &RoutingConfig::max_sessions>},
    {"accept_unsigned_keys", setAcceptUnsignedKeys},
};

// ---- [supervisor] ----

const KeySpec kSupervisorKeys[] = {
    {"restart_backoff_initial",
     durationKey<&Config::supervisor, &SupervisorConfig::restart_backoff_initial>},
    {"restart_backoff_max", durationKey<&Config::supervisor, &SupervisorConfig::restart_backoff_max>},
    {"stop_grace", durationKey<&Config::supervisor, &SupervisorConfig::stop_grace>},
    {"startup_timeout", durationKey<&Config::supervisor, &SupervisorConfig::startup_timeout>},
    {"stable_after", durationKey<&Config::supervisor, &SupervisorConfig::stable_after>},
};

// ---- [health_check] ----

void setHealthCheckPath(Target& target, std::string_view value, Problems& problems) {
  // The path goes verbatim into a request line, so it must be a single printable word.
  bool printable = std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!value.starts_with("/")) {
    problems.push_back(inQuotes(value) + " must start with '/'");
  } else if (!printable) {
    problems.push_back(inQuotes(value) + " must not contain spaces or control characters");
  } else {
    target.config.health_check.path = std::string(value);
  }
}

const KeySpec kHealthCheckKeys[] = {
    {"path", setHealthCheckPath},
    {"interval", durationKey<&Config::health_check, &HealthCheckConfig::interval>},
    {"timeout", durationKey<&Config::health_check, &HealthCheckConfig::timeout>},
    {"rise", integerKey<1, kMaxU32, &Config::health_check, &HealthCheckConfig::rise>},
    {"fall", integerKey<1, kMaxU32, &Config::health_check, &HealthCheckConfig::fall>},
};

// ---- [compression] ----

// "text/html, image/svg+xml": media types without parameters, compared in lower case.
void setCompressionTypes(Target& target, std::string_view value, Problems& problems) {
  std::vector<std::string> types;
  auto isToken = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || (c != 0 && std::strchr("!#$&-^_.+", c) != nullptr);
  };
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string type(trimOws(value.substr(0, comma)));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t slash = type.find('/');
    bool valid = slash != std::string::npos && slash > 0 && slash + 1 < type.size() &&
                 std::all_of(type.begin(), type.end(), [&](char c) { return c == '/' || isToken(c); }) &&
                 type.find('/', slash + 1) == std::string::npos;
    if (!valid) {
      problems.push_back(inQuotes(type) + " is not a media type (type/subtype, without parameters)");
      return;
    }
    types.push_back(std::move(type));
  }
  if (types.empty()) {
    problems.push_back("no media type listed (set enabled = no to compress nothing)");
    return;
  }
  target.config.compression.types = std::move(types);
}

const KeySpec kCompressionKeys[] = {
    {"enabled", yesNoKey<&Config::compression, &CompressionConfig::enabled>},
    {"types", setCompressionTypes},
    {"min_size", sizeKey<0, &Config::compression, &CompressionConfig::min_size>},
    {"level", integerKey<0, 9, &Config::compression, &CompressionConfig::level>},
    {"max_streams", integerKey<1, 100000, &Config::compression, &CompressionConfig::max_streams>},
};

// ---- [worker NAME] ----

void setWorkerAddress(Target& target, std::string_view value, Problems& problems) {
  std::string error;
  std::optional<Address> address = parseAddress(value, &error);
  if (!address) {
    problems.push_back(error);
    return;
  }
  if (address->kind == Address::Kind::kUnix) {
    address->path = resolvePath(target.base_dir, address->path);
    if (!checkUnixPathLength(address->path, problems)) return;
  } else if (address->port == 0) {
    problems.push_back(inQuotes(value) + " is not a valid worker address: port 0 is only for listeners");
    return;
  }
  target.worker->address = *address;
}

void setWorkerCommand(Target& target, std::string_view value, Problems& problems) {
  if (value.empty()) {
    problems.push_back("empty command (omit the key for an external worker)");
    return;
  }
  // A bare name is looked up on PATH when the worker starts. A command that begins with a
  // placeholder ("{state_dir}/bin/app") is only complete after substitution.
  bool resolve = value.find('/') != std::string_view::npos && !value.starts_with("{");
  target.worker->command = resolve ? resolvePath(target.base_dir, value) : std::string(value);
}

void setWorkerArgs(Target& target, std::string_view value, Problems& problems) {
  std::string error;
  std::optional<std::vector<std::string>> args = splitArgs(value, &error);
  if (!args) {
    problems.push_back(error);
    return;
  }
  target.worker->args = std::move(*args);
}

void setWorkerEnv(Target& target, std::string_view value, Problems& problems) {
  size_t equals = value.find('=');
  if (equals == std::string_view::npos) {
    problems.push_back(inQuotes(value) + " is not NAME=VALUE");
    return;
  }
  std::string name(value.substr(0, equals));
  if (!isEnvName(name)) {
    problems.push_back(inQuotes(name) + " is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    return;
  }
  auto [it, inserted] = target.env_lines->emplace(name, target.line);
  if (!inserted) {
    problems.push_back(name + " is already set on line " + std::to_string(it->second));
    return;
  }
  target.worker->env.emplace_back(std::move(name), std::string(value.substr(equals + 1)));
}

const KeySpec kWorkerKeys[] = {
    {"address", setWorkerAddress},
    {"command", setWorkerCommand},
    {"args", setWorkerArgs},
    {"env", setWorkerEnv},
};

struct SectionSpec {
  std::string_view name;
  std::span<const KeySpec> keys;
};

const SectionSpec kSections[] = {
    {"proxy", kProxyKeys},         {"timeouts", kTimeoutKeys},   {"limits", kLimitKeys},
    {"routing", kRoutingKeys},     {"supervisor", kSupervisorKeys},
    {"health_check", kHealthCheckKeys}, {"tls", kTlsKeys},         {"compression", kCompressionKeys},
    {"worker", kWorkerKeys},
};

const SectionSpec* findSection(std::string_view name) {
  for (const SectionSpec& section : kSections) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

const KeySpec* findKey(const SectionSpec& section, std::string_view name) {
  for (const KeySpec& key : section.keys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

// Cuts a trailing comment: '#' at the start of the line or after whitespace, outside
// double quotes. Quotes and backslash escapes follow the same rules as splitArgs(), so a
// '#' inside a quoted argument survives.
std::string_view stripComment(std::string_view line) {
  bool in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
      ++i;
    } else if (c == '"') {
      in_quotes = !in_quotes;
    } else if (c == '#' && !in_quotes && (i == 0 || isSpace(line[i - 1]))) {
      return line.substr(0, i);
    }
  }
  return line;
}

// True when a connection to `worker` would reach the proxy's own TCP socket `own`.
// A wildcard listener also owns the loopback address on its port; any other address on
// that port may well be another host, so it is not flagged.
bool reachesSameSocket(const Address& own, const Address& worker) {
  if (own.kind != worker.kind) return false;
  if (own.kind == Address::Kind::kUnix) return own.path == worker.path;
  if (own.port == 0 || own.port != worker.port) return false;
  if (own.host == worker.host) return true;
  bool wildcard = own.host == "0.0.0.0" || own.host == "::";
  bool loopback = worker.host.starts_with("127.") || worker.host == "::1";
  return wildcard && loopback;
}

// One pass over the lines, then whole-file checks. Collects every problem.
class Parser {
 public:
  Parser(const std::string& file, fs::path base_dir) : file_(file), base_dir_(std::move(base_dir)) {
    config_.source_path = file;
    config_.metrics_listen.kind = Address::Kind::kTcp;
    config_.metrics_listen.host = "127.0.0.1";
    config_.metrics_listen.port = 9090;
  }

  ConfigLoadResult run(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
    int number = 0;
    while (!text.empty()) {
      size_t newline = text.find('\n');
      std::string_view line = text.substr(0, newline);
      text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
      if (line.ends_with('\r')) line.remove_suffix(1);
      parseLine(line, ++number);
    }
    finish();
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    ConfigLoadResult result;
    if (errors_.empty()) result.config = std::move(config_);
    result.errors = std::move(errors_);
    return result;
  }

 private:
  enum class State { kNone, kSection, kWorker, kSkip };

  struct WorkerDraft {
    WorkerConfig worker;
    int header_line = 0;
    bool duplicate = false;  // checked for its own errors, but not part of the config
    std::map<std::string, int> key_lines;
    std::map<std::string, int> env_lines;
  };

  void addError(int line, std::string key, std::string message) {
    errors_.push_back(ConfigError{file_, line, std::move(key), std::move(message)});
  }

  void parseLine(std::string_view raw, int number) {
    if (raw.size() > kMaxLineLength) {
      addError(number, "", "line is longer than " + std::to_string(kMaxLineLength) + " characters");
      return;
    }
    if (raw.find('\0') != std::string_view::npos) {
      addError(number, "", "line contains a NUL byte");
      return;
    }
    std::string_view line = trimOws(stripComment(trimOws(raw)));
    if (line.empty()) return;
    if (line.front() == '[') {
      parseHeader(line, number);
      return;
    }
    size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      addError(number, "", "expected \"key = value\" or a [section] header");
      return;
    }
    parseEntry(trimOws(line.substr(0, equals)), trimOws(line.substr(equals + 1)), number);
  }

  void parseHeader(std::string_view line, int number) {
    state_ = State::kSkip;  // until the header proves valid, ignore the keys below it
    size_t close = line.find(']');
    if (close == std::string_view::npos) {
      addError(number, "", "malformed section header: missing ']'");
      return;
    }
    if (close + 1 != line.size()) {
      addError(number, "", "malformed section header: unexpected text after ']'");
      return;
    }
    std::string_view inner = trimOws(line.substr(1, close - 1));
    if (inner.empty()) {
      addError(number, "", "malformed section header: empty section name");
      return;
    }
    size_t space = inner.find_first_of(" \t");
    std::string_view head = inner.substr(0, space);
    std::string_view rest = space == std::string_view::npos ? "" : trimOws(inner.substr(space));
    if (head == "worker") {
      startWorker(rest, number);
      return;
    }
    const SectionSpec* section = findSection(head);
    if (section == nullptr || !rest.empty()) {
      addError(number, "", "unknown section [" + std::string(inner) + "]");
      return;
    }
    section_ = section;
    section_lines_.emplace(std::string(head), number);
    state_ = State::kSection;
  }

  void startWorker(std::string_view name, int number) {
    if (name.empty()) {
      addError(number, "", "malformed section header: missing worker name, use [worker NAME]");
      return;
    }
    if (!isWorkerName(name)) {
      addError(number, "",
               "invalid worker name " + inQuotes(name) + " (1 to 32 of A-Z a-z 0-9 _ -)");
      return;
    }
    WorkerDraft draft;
    draft.worker.name = std::string(name);
    draft.header_line = number;
    for (const WorkerDraft& other : workers_) {
      if (!other.duplicate && other.worker.name == name) {
        addError(number, "worker." + draft.worker.name,
                 "duplicate worker name (first defined on line " +
                     std::to_string(other.header_line) + ")");
        draft.duplicate = true;
        break;
      }
    }
    workers_.push_back(std::move(draft));
    section_ = findSection("worker");
    state_ = State::kWorker;
  }

  void parseEntry(std::string_view key, std::string_view value, int number) {
    if (key.empty()) {
      addError(number, "", "missing key before '='");
      return;
    }
    if (state_ == State::kNone) {
      addError(number, "", "key " + inQuotes(key) + " appears before any [section] header");
      return;
    }
    if (state_ == State::kSkip) return;  // the header's error covers the section

    WorkerDraft* draft = state_ == State::kWorker ? &workers_.back() : nullptr;
    std::string full_key = draft != nullptr ? "worker." + draft->worker.name + "." + std::string(key)
                                            : std::string(section_->name) + "." + std::string(key);
    const KeySpec* spec = findKey(*section_, key);
    if (spec == nullptr) {
      addError(number, full_key, unknownKeyMessage(key));
      return;
    }
    std::map<std::string, int>& key_lines = draft != nullptr ? draft->key_lines : key_lines_;
    auto [it, inserted] = key_lines.emplace(full_key, number);
    if (!inserted && key != "env") {
      addError(number, full_key,
               "duplicate key (first set on line " + std::to_string(it->second) + ")");
      return;
    }
    Target target{config_, draft != nullptr ? &draft->worker : nullptr, base_dir_, number,
                  draft != nullptr ? &draft->env_lines : nullptr};
    Problems problems;
    spec->set(target, value, problems);
    for (std::string& problem : problems) addError(number, full_key, std::move(problem));
  }

  // Names the right section when the key exists elsewhere: the usual cause is a key
  // pasted under the wrong header.
  std::string unknownKeyMessage(std::string_view key) const {
    for (const SectionSpec& section : kSections) {
      if (&section != section_ && findKey(section, key) != nullptr) {
        std::string header = section.name == "worker" ? "worker NAME" : std::string(section.name);
        return "unknown key (" + std::string(key) + " belongs in [" + header + "])";
      }
    }
    return "unknown key";
  }

  int sectionLine(const std::string& section) const {
    auto it = section_lines_.find(section);
    return it == section_lines_.end() ? 0 : it->second;
  }

  int keyLine(const std::string& key) const {
    auto it = key_lines_.find(key);
    return it == key_lines_.end() ? 0 : it->second;
  }

  bool isSet(const std::string& key) const { return key_lines_.count(key) != 0; }

  void finish() {
    checkProxy();
    checkRouting();
    checkTls();
    const SupervisorConfig& supervisor = config_.supervisor;
    if (supervisor.restart_backoff_max < supervisor.restart_backoff_initial) {
      std::string key = isSet("supervisor.restart_backoff_max") ? "supervisor.restart_backoff_max"
                                                                : "supervisor.restart_backoff_initial";
      addError(keyLine(key), key,
               "restart_backoff_max (" + formatDuration(supervisor.restart_backoff_max) +
                   ") is less than restart_backoff_initial (" +
                   formatDuration(supervisor.restart_backoff_initial) + ")");
    }
    const LimitsConfig& limits = config_.limits;
    if (limits.max_request_line > limits.max_header_bytes) {
      std::string key = isSet("limits.max_request_line") ? "limits.max_request_line"
                                                         : "limits.max_header_bytes";
      addError(keyLine(key), key,
               "max_request_line (" + std::to_string(limits.max_request_line) +
                   " bytes) exceeds max_header_bytes (" + std::to_string(limits.max_header_bytes) +
                   " bytes)");
    }
    if (limits.retry_buffer_total < limits.retry_buffer) {
      std::string key = isSet("limits.retry_buffer_total") ? "limits.retry_buffer_total" : "limits.retry_buffer";
      addError(keyLine(key), key,
               "retry_buffer_total (" + std::to_string(limits.retry_buffer_total) +
                   " bytes) is less than retry_buffer (" + std::to_string(limits.retry_buffer) +
                   " bytes): no body that size could ever be kept");
    }
    if (limits.per_client_connections != 0 && limits.client_table_size <= limits.max_client_connections) {
      std::string key = isSet("limits.client_table_size") ? "limits.client_table_size" : "limits.per_client_connections";
      addError(keyLine(key), key,
               "client_table_size (" + std::to_string(limits.client_table_size) +
                   ") must exceed max_client_connections (" + std::to_string(limits.max_client_connections) +
                   ") for per_client_connections to hold for every client");
    }
    checkWorkers();
  }

  void checkProxy() {
    int proxy_line = sectionLine("proxy");
    if (!isSet("proxy.listen")) addError(proxy_line, "proxy.listen", "required key is missing");
    if (!isSet("proxy.state_dir")) {
      addError(proxy_line, "proxy.state_dir", "required key is missing");
    } else if (!isSet("proxy.admin_socket") && !config_.state_dir.empty()) {
      config_.admin_socket = (fs::path(config_.state_dir) / "admin.sock").string();
      Problems problems;
      if (!checkUnixPathLength(config_.admin_socket, problems)) {
        addError(keyLine("proxy.state_dir"), "proxy.admin_socket",
                 "the default <state_dir>/admin.sock is too long: " + problems.front() +
                     "; set admin_socket to a shorter path");
      }
    }
    if (isSet("proxy.listen") && isSet("proxy.metrics_listen") &&
        reachesSameSocket(config_.listen, config_.metrics_listen)) {
      addError(keyLine("proxy.metrics_listen"), "proxy.metrics_listen",
               config_.metrics_listen.toString() + " is also the listen address");
    }
  }

  void checkTls() {
    if (sectionLine("tls") == 0) return;
    config_.tls.enabled = true;
    int line = sectionLine("tls");
    for (const char* key : {"tls.listen", "tls.certificate", "tls.key"}) {
      if (!isSet(key)) addError(line, key, "required key is missing");
    }
    if (isSet("tls.listen") && reachesSameSocket(config_.tls.listen, config_.listen)) {
      addError(keyLine("tls.listen"), "tls.listen", config_.tls.listen.toString() + " is also the listen address");
    }
    if (isSet("tls.listen") && isSet("proxy.metrics_listen") &&
        reachesSameSocket(config_.tls.listen, config_.metrics_listen)) {
      addError(keyLine("tls.listen"), "tls.listen", config_.tls.listen.toString() + " is also the metrics address");
    }
  }

  void checkRouting() {
    RoutingConfig& routing = config_.routing;
    if (routing.secret_file.empty() && !config_.state_dir.empty()) {
      routing.secret_file = (fs::path(config_.state_dir) / "routing-secret").string();
    }
    if (routing.key_source != KeySource::kAppCookie) return;
    if (routing.app_cookie_name.empty()) {
      addError(sectionLine("routing"), "routing.app_cookie_name",
               "required when key_source = app_cookie");
    } else if (routing.app_cookie_name == routing.cookie_name) {
      addError(keyLine("routing.app_cookie_name"), "routing.app_cookie_name",
               inQuotes(routing.app_cookie_name) + " must differ from cookie_name");
    }
  }

  void checkWorkers() {
    if (workers_.empty()) {
      addError(0, "", "at least one [worker NAME] section is required");
      return;
    }
    struct OwnSocket {
      const char* key;
      Address address;
    };
    std::vector<OwnSocket> own;
    if (isSet("proxy.listen")) own.push_back({"listen", config_.listen});
    own.push_back({"metrics_listen", config_.metrics_listen});
    if (!config_.admin_socket.empty()) {
      Address admin;
      admin.kind = Address::Kind::kUnix;
      admin.path = config_.admin_socket;
      own.push_back({"admin_socket", admin});
    }

    std::vector<const WorkerDraft*> with_address;
    for (const WorkerDraft& draft : workers_) {
      const WorkerConfig& worker = draft.worker;
      std::string prefix = "worker." + worker.name + ".";
      auto line_of = [&](const char* key) { return draft.key_lines.at(prefix + key); };
      bool has_address = draft.key_lines.count(prefix + "address") != 0;
      if (!has_address) {
        addError(draft.header_line, prefix + "address", "required key is missing");
      }
      if (!worker.supervised()) {
        for (const char* key : {"args", "env"}) {
          if (draft.key_lines.count(prefix + key) != 0) {
            addError(line_of(key), prefix + key,
                     "only allowed with command (an external worker is not started by the proxy)");
          }
        }
      }
      // A value error leaves the default address (kTcp, port 0): nothing to compare.
      bool address_valid = worker.address.kind == Address::Kind::kUnix || worker.address.port != 0;
      if (draft.duplicate || !has_address || !address_valid) continue;
      for (const OwnSocket& socket : own) {
        if (reachesSameSocket(socket.address, worker.address)) {
          addError(line_of("address"), prefix + "address",
                   worker.address.toString() + " is the proxy's own " + socket.key + " address");
        }
      }
      for (const WorkerDraft* other : with_address) {
        if (other->worker.address == worker.address) {
          addError(line_of("address"), prefix + "address",
                   worker.address.toString() + " is already used by worker " + other->worker.name);
          break;
        }
      }
      with_address.push_back(&draft);
    }
    for (const WorkerDraft& draft : workers_) {
      if (!draft.duplicate) config_.workers.push_back(draft.worker);
    }
  }

  const std::string& file_;
  fs::path base_dir_;
  Config config_;
  std::vector<ConfigError> errors_;
  State state_ = State::kNone;
  const SectionSpec* section_ = nullptr;
  std::map<std::string, int> section_lines_;  // section name -> line of its first header
  std::map<std::string, int> key_lines_;      // "section.key" -> line that set it
  std::vector<WorkerDraft> workers_;
};

// The absolute directory of `path`, which may itself be relative to the working directory.
fs::path directoryOf(const std::string& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(fs::path(path), ec);
  if (ec) absolute = fs::path(path);
  return absolute.lexically_normal().parent_path();
}

ConfigLoadResult failure(const std::string& path, std::string message) {
  ConfigLoadResult result;
  result.errors.push_back(ConfigError{path, 0, "", std::move(message)});
  return result;
}

}  // namespace

std::string Address::toString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

bool Cidr::contains(const struct sockaddr* sockaddr) const {
  if (sockaddr == nullptr) return false;
  // Bring the peer into this network's family. A v4 peer against a v6 network becomes
  // ::ffff:a.b.c.d; a v4-mapped v6 peer against a v4 network drops its first 12 bytes.
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  uint8_t peer[16] = {};
  if (sockaddr->sa_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, sockaddr, sizeof v4);
    if (family == AF_INET) {
      std::memcpy(peer, &v4.sin_addr, 4);
    } else if (family == AF_INET6) {
      std::memcpy(peer, kMappedPrefix, 12);
      std::memcpy(peer + 12, &v4.sin_addr, 4);
    } else {
      return false;
    }
  } else if (sockaddr->sa_family == AF_INET6) {
    sockaddr_in6 v6;
    std::memcpy(&v6, sockaddr, sizeof v6);
    if (family == AF_INET6) {
      std::memcpy(peer, &v6.sin6_addr, 16);
    } else if (family == AF_INET && std::memcmp(v6.sin6_addr.s6_addr, kMappedPrefix, 12) == 0) {
      std::memcpy(peer, v6.sin6_addr.s6_addr + 12, 4);
    } else {
      return false;
    }
  } else {
    return false;
  }
  int full_bytes = prefix_len / 8;
  if (std::memcmp(peer, bytes, static_cast<size_t>(full_bytes)) != 0) return false;
  int rest_bits = prefix_len % 8;
  if (rest_bits == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest_bits));
  return (peer[full_bytes] & mask) == (bytes[full_bytes] & mask);
}

std::string ConfigError::toString() const {
  std::string text = file;
  if (line > 0) text += ":" + std::to_string(line);
  text += ": ";
  if (!key.empty()) text += key + ": ";
  text += message;
  return text;
}

const WorkerConfig* Config::findWorker(const std::string& name) const {
  for (const WorkerConfig& worker : workers) {
    if (worker.name == name) return &worker;
  }
  return nullptr;
}

ConfigLoadResult loadConfig(const std::string& path) {
  try {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
      return failure(path, "cannot read: " + std::generic_category().message(errno));
    }
    std::string text;
    char buffer[64 * 1024];
    int read_errno = 0;
    bool too_large = false;
    while (true) {
      size_t n = std::fread(buffer, 1, sizeof buffer, file);
      text.append(buffer, n);
      if (text.size() > kMaxFileSize) {
        too_large = true;
        break;
      }
      if (n < sizeof buffer) {
        if (std::ferror(file)) read_errno = errno;
        break;
      }
    }
    std::fclose(file);
    if (read_errno != 0) {
      return failure(path, "cannot read: " + std::generic_category().message(read_errno));
    }
    if (too_large) {
      return failure(path, "cannot read: larger than " + std::to_string(kMaxFileSize) + " bytes");
    }
    return parseConfig(text, path);
  } catch (const std::exception& e) {
    return failure(path, std::string("cannot read: ") + e.what());
  }
}

ConfigLoadResult parseConfig(const std::string& text, const std::string& path) {
  try {
    Parser parser(path, directoryOf(path));
    return parser.run(text);
  } catch (const std::exception& e) {
    // Only allocation failure can get here; report it like any other problem.
    return failure(path, std::string("cannot parse: ") + e.what());
  }
}

}  // namespace stickyproxy
