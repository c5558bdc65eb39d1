#include "proxy/config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "proxy/config/value_parser.h"

namespace stickyproxy {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Where the test configs pretend to live; only used for messages and path resolution.
const std::string kPath = "/srv/sp/conf/test.conf";

// The smallest config that loads: the required keys and one worker.
const std::string kMinimal =
    "[proxy]\n"
    "listen = 0.0.0.0:8080\n"
    "state_dir = /srv/sp/state\n"
    "[worker w1]\n"
    "address = 127.0.0.1:9001\n";

std::vector<std::string> errorsOf(const std::string& text, const std::string& path = kPath) {
  ConfigLoadResult result = parseConfig(text, path);
  std::vector<std::string> lines;
  for (const ConfigError& error : result.errors) lines.push_back(error.toString());
  CHECK(result.config.has_value() == lines.empty());
  return lines;
}

Config mustParse(const std::string& text, const std::string& path = kPath) {
  ConfigLoadResult result = parseConfig(text, path);
  for (const ConfigError& error : result.errors) FAIL_CHECK(error.toString());
  REQUIRE(result.config.has_value());
  return *result.config;
}

// kMinimal with `extra` appended to its [proxy] section.
std::string withProxyKeys(const std::string& extra) {
  return "[proxy]\nlisten = 0.0.0.0:8080\nstate_dir = /srv/sp/state\n" + extra +
         "[worker w1]\naddress = 127.0.0.1:9001\n";
}

// kMinimal plus `section` (which starts on line 6).
std::string withSection(const std::string& section) { return kMinimal + section; }

sockaddr_in v4Peer(const char* text) {
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  REQUIRE(inet_pton(AF_INET, text, &peer.sin_addr) == 1);
  return peer;
}

sockaddr_in6 v6Peer(const char* text) {
  sockaddr_in6 peer{};
  peer.sin6_family = AF_INET6;
  REQUIRE(inet_pton(AF_INET6, text, &peer.sin6_addr) == 1);
  return peer;
}

Cidr cidr(const char* text) {
  std::string error;
  std::optional<Cidr> parsed = parseCidr(text, &error);
  INFO(error);
  REQUIRE(parsed.has_value());
  return *parsed;
}

template <typename Peer>
bool contains(const Cidr& network, const Peer& peer) {
  return network.contains(reinterpret_cast<const sockaddr*>(&peer));
}

std::string durationError(const char* text) {
  std::string error;
  CHECK_FALSE(parseDuration(text, &error).has_value());
  return error;
}

std::string sizeError(const char* text) {
  std::string error;
  CHECK_FALSE(parseSize(text, &error).has_value());
  return error;
}

std::filesystem::path confDir() {
  // Tests run from the build directory, so find conf/ from this source file instead.
  return std::filesystem::path(__FILE__).parent_path() / ".." / ".." / ".." / "conf";
}

TEST_CASE("a config with every key set parses into every field", "[config]") {
  Config config = mustParse(
      "# full config\n"
      "[proxy]\n"
      "listen = [::]:8443\n"
      "metrics_listen = 127.0.0.1:9100   # scraped locally\n"
      "admin_socket = /run/sp/admin.sock\n"
      "state_dir = /var/lib/sp\n"
      "trusted_proxies = 127.0.0.1/32, 10.0.0.0/8, ::1, fd00::/8\n"
      "access_log = errors\n"
      "\n"
      "[timeouts]\n"
      "client_header = 7s\n"
      "client_body_idle = 1m\n"
      "keepalive_idle = 90s\n"
      "upstream_connect = 1500ms\n"
      "upstream_response = 2h\n"
      "upstream_idle = 45s\n"
      "queue = 3s\n"
      "admin_idle = 20s\n"
      "[limits]\n"
      "max_request_line = 4k\n"
      "max_header_bytes = 16K\n"
      "max_headers = 50\n"
      "max_body = 2G\n"
      "max_client_connections = 500\n"
      "worker_max_in_flight = 8\n"
      "worker_queue = 0\n"
      "upstream_idle_per_worker = 0\n"
      "write_buffer_high = 1m\n"
      "[routing]\n"
      "cookie_name = sp_route\n"
      "cookie_max_age = 2d\n"
      "key_source = app_cookie\n"
      "app_cookie_name = chatmrpt_session\n"
      "virtual_nodes = 10000\n"
      "moved_key_idle = 12h\n"
      "session_idle = 45m\n"
      "[supervisor]\n"
      "restart_backoff_initial = 1s\n"
      "restart_backoff_max = 1s\n"
      "stop_grace = 20s\n"
      "startup_timeout = 1m\n"
      "stable_after = 15s\n"
      "[health_check]\n"
      "path = /healthz?full=1\n"
      "interval = 5s\n"
      "timeout = 2s\n"
      "rise = 1\n"
      "fall = 1\n"
      "[worker app-1]\n"
      "address = unix:/run/sp/app-1.sock\n"
      "command = /usr/bin/app\n"
      "args = --name {name} --title \"two words\" \"\" say\\\"hi\\\\ c:\\dir  # comment\n"
      "env = APP_ENV=production\n"
      "env = EMPTY=\n"
      "env = EQUALS=a=b\n"
      "[worker remote_2]\n"
      "address = [2001:db8:0::7]:8000\n");

  CHECK(config.source_path == kPath);
  CHECK(config.listen.toString() == "[::]:8443");
  CHECK(config.metrics_listen == Address{Address::Kind::kTcp, "127.0.0.1", 9100, ""});
  CHECK(config.admin_socket == "/run/sp/admin.sock");
  CHECK(config.state_dir == "/var/lib/sp");
  CHECK_FALSE(config.access_log_all);
  REQUIRE(config.trusted_proxies.size() == 4);
  CHECK(config.trusted_proxies[0].text == "127.0.0.1/32");
  CHECK(config.trusted_proxies[0].family == AF_INET);
  CHECK(config.trusted_proxies[0].prefix_len == 32);
  CHECK(config.trusted_proxies[2].family == AF_INET6);
  CHECK(config.trusted_proxies[2].prefix_len == 128);
  CHECK(config.trusted_proxies[3].prefix_len == 8);

  CHECK(config.timeouts.client_header == seconds(7));
  CHECK(config.timeouts.client_body_idle == minutes(1));
  CHECK(config.timeouts.keepalive_idle == seconds(90));
  CHECK(config.timeouts.upstream_connect == milliseconds(1500));
  CHECK(config.timeouts.upstream_response == hours(2));
  CHECK(config.timeouts.upstream_idle == seconds(45));
  CHECK(config.timeouts.queue == seconds(3));
  CHECK(config.timeouts.admin_idle == seconds(20));

  CHECK(config.limits.max_request_line == 4096);
  CHECK(config.limits.max_header_bytes == 16384);
  CHECK(config.limits.max_headers == 50);
  CHECK(config.limits.max_body == 2ull * 1024 * 1024 * 1024);
  CHECK(config.limits.max_client_connections == 500);
  CHECK(config.limits.worker_max_in_flight == 8);
  CHECK(config.limits.worker_queue == 0);
  CHECK(config.limits.upstream_idle_per_worker == 0);
  CHECK(config.limits.write_buffer_high == 1024 * 1024);

  CHECK(config.routing.cookie_name == "sp_route");
  CHECK(config.routing.cookie_max_age == hours(48));
  CHECK(config.routing.key_source == KeySource::kAppCookie);
  CHECK(config.routing.app_cookie_name == "chatmrpt_session");
  CHECK(config.routing.virtual_nodes == 10000);
  CHECK(config.routing.moved_key_idle == hours(12));
  CHECK(config.routing.session_idle == minutes(45));

  CHECK(config.supervisor.restart_backoff_initial == seconds(1));
  CHECK(config.supervisor.restart_backoff_max == seconds(1));
  CHECK(config.supervisor.stop_grace == seconds(20));
  CHECK(config.supervisor.startup_timeout == minutes(1));
  CHECK(config.supervisor.stable_after == seconds(15));

  CHECK(config.health_check.path == "/healthz?full=1");
  CHECK(config.health_check.interval == seconds(5));
  CHECK(config.health_check.timeout == seconds(2));
  CHECK(config.health_check.rise == 1);
  CHECK(config.health_check.fall == 1);

  REQUIRE(config.workers.size() == 2);
  const WorkerConfig& app = config.workers[0];
  CHECK(app.name == "app-1");
  CHECK(app.address.toString() == "unix:/run/sp/app-1.sock");
  CHECK(app.supervised());
  CHECK(app.command == "/usr/bin/app");
  CHECK(app.args == std::vector<std::string>{"--name", "{name}", "--title", "two words", "",
                                             "say\"hi\\", "c:\\dir"});
  CHECK(app.env == std::vector<std::pair<std::string, std::string>>{
                       {"APP_ENV", "production"}, {"EMPTY", ""}, {"EQUALS", "a=b"}});
  const WorkerConfig& remote = config.workers[1];
  CHECK_FALSE(remote.supervised());
  CHECK(remote.address.host == "2001:db8::7");  // canonical form
  CHECK(remote.address.port == 8000);
  CHECK(remote.address.toString() == "[2001:db8::7]:8000");

  CHECK(config.findWorker("remote_2") == &config.workers[1]);
  CHECK(config.findWorker("w9") == nullptr);
}

TEST_CASE("keys left out take the defaults documented in config.h", "[config]") {
  Config config = mustParse(kMinimal);
  CHECK(config.metrics_listen.toString() == "127.0.0.1:9090");
  CHECK(config.admin_socket == "/srv/sp/state/admin.sock");
  CHECK(config.trusted_proxies.empty());
  CHECK(config.timeouts == TimeoutsConfig{});
  CHECK(config.limits == LimitsConfig{});
  RoutingConfig routing;
  routing.secret_file = "/srv/sp/state/routing-secret";  // under state_dir
  CHECK(config.routing == routing);
  CHECK(config.supervisor == SupervisorConfig{});
  CHECK_FALSE(config.retry_non_idempotent);
  CHECK(config.health_check == HealthCheckConfig{});
  CHECK(config.routing.cookie_max_age == hours(24 * 30));
  REQUIRE(config.workers.size() == 1);
  CHECK(config.workers[0].command.empty());
  CHECK(config.workers[0].args.empty());
}

TEST_CASE("relative paths resolve against the config file's directory", "[config]") {
  Config config = mustParse(
      "[proxy]\n"
      "listen = 127.0.0.1:0\n"
      "state_dir = ../var/state/\n"
      "admin_socket = run/admin.sock\n"
      "[worker a]\n"
      "address = unix:../var/run/a.sock\n"
      "command = ../build/backend\n"
      "[worker b]\n"
      "address = unix:/abs/b.sock\n"
      "command = python3\n"
      "[worker c]\n"
      "address = unix:./c.sock\n"
      "command = {state_dir}/bin/app\n");
  CHECK(config.state_dir == "/srv/sp/var/state");
  CHECK(config.admin_socket == "/srv/sp/conf/run/admin.sock");
  CHECK(config.workers[0].address.path == "/srv/sp/var/run/a.sock");
  CHECK(config.workers[0].command == "/srv/sp/build/backend");
  CHECK(config.workers[1].address.path == "/abs/b.sock");
  CHECK(config.workers[1].command == "python3");  // found on PATH at start
  CHECK(config.workers[2].address.path == "/srv/sp/conf/c.sock");
  CHECK(config.workers[2].command == "{state_dir}/bin/app");

  SECTION("a relative config path is made absolute from the working directory") {
    Config relative = mustParse(kMinimal + "[worker w2]\naddress = unix:w2.sock\n", "conf/x.conf");
    std::filesystem::path expected = std::filesystem::current_path() / "conf" / "w2.sock";
    CHECK(relative.workers[1].address.path == expected.lexically_normal().string());
  }
  SECTION("the default admin socket follows a relative state_dir") {
    Config relative = mustParse(
        "[proxy]\nlisten = 127.0.0.1:0\nstate_dir = state\n[worker w1]\naddress = 127.0.0.1:1\n");
    CHECK(relative.admin_socket == "/srv/sp/conf/state/admin.sock");
  }
}

TEST_CASE("syntax errors name the line and carry no key", "[config]") {
  CHECK(errorsOf(kMinimal + "just words\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: expected \"key = value\" or a [section] header"});
  CHECK(errorsOf(kMinimal + " = 3\n") ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: missing key before '='"});
  CHECK(errorsOf("listen = 1.2.3.4:1\n" + kMinimal) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:1: key \"listen\" appears before any [section] header"});
  CHECK(errorsOf(kMinimal + "[limits\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: malformed section header: missing ']'"});
  CHECK(errorsOf(kMinimal + "[limits] extra\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: malformed section header: unexpected text after ']'"});
  CHECK(errorsOf(kMinimal + "[ ]\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: malformed section header: empty section name"});
  CHECK(errorsOf(kMinimal + std::string(4097, 'x') + "\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: line is longer than 4096 characters"});
  CHECK(errorsOf(kMinimal + std::string("a = b\0c\n", 8)) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: line contains a NUL byte"});
}

TEST_CASE("an unknown section is reported once and its keys are skipped", "[config]") {
  CHECK(errorsOf(kMinimal + "[logging]\nlevel = debug\nformat = json\n[Proxy]\n") ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: unknown section [logging]",
                                 "/srv/sp/conf/test.conf:9: unknown section [Proxy]"});
}

TEST_CASE("an unknown key is an error, never ignored", "[config]") {
  CHECK(errorsOf(withSection("[timeouts]\nclient_headers = 10s\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:7: timeouts.client_headers: unknown key"});
  SECTION("a key under the wrong section says where it belongs") {
    CHECK(errorsOf(withSection("[limits]\nqueue = 5s\n")) ==
          std::vector<std::string>{
              "/srv/sp/conf/test.conf:7: limits.queue: unknown key (queue belongs in [timeouts])"});
  }
  SECTION("worker keys are named after the worker") {
    CHECK(errorsOf(withSection("[worker w2]\naddress = 127.0.0.1:9002\nport = 1\n")) ==
          std::vector<std::string>{"/srv/sp/conf/test.conf:8: worker.w2.port: unknown key"});
  }
}

TEST_CASE("the session-safety keys parse, default and refuse bad values", "[config]") {
  Config config = mustParse(withProxyKeys("retry_non_idempotent = on_worker_exit\n") +
                            "[limits]\nretry_buffer = 0\n[routing]\nsecret_file = ../shared/secret\n"
                            "max_sessions = 1000\naccept_unsigned_keys = no\n");
  CHECK(config.retry_non_idempotent);
  CHECK(config.limits.retry_buffer == 0);
  CHECK(config.routing.secret_file == "/srv/sp/shared/secret");
  CHECK(config.routing.max_sessions == 1000);
  CHECK_FALSE(config.routing.accept_unsigned_keys);
  CHECK(mustParse(kMinimal).limits.retry_buffer == 8u * 1024 * 1024);
  CHECK(mustParse(kMinimal).routing.accept_unsigned_keys);
  CHECK(errorsOf(withProxyKeys("retry_non_idempotent = always\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:4: proxy.retry_non_idempotent: \"always\" is not one of: on_worker_exit, never"});
  CHECK(errorsOf(withSection("[routing]\nmax_sessions = 999\n")).size() == 1);
  CHECK(errorsOf(withSection("[routing]\naccept_unsigned_keys = maybe\n")).size() == 1);
  CHECK(errorsOf(withSection("[limits]\nretry_buffer = -1\n")).size() == 1);
}

TEST_CASE("the edge keys (desync, TLS, privileges) parse, default and refuse bad values",
          "[config]") {
  Config defaults = mustParse(kMinimal);
  CHECK(defaults.desync_mode == DesyncMode::kDefensive);
  CHECK_FALSE(defaults.tls.enabled);
  CHECK(defaults.user.empty());
  CHECK_FALSE(defaults.allow_root);

  Config config = mustParse(withProxyKeys("desync_mode = strictest\nuser = stickyproxy\ngroup = www-data\n"
                                          "allow_root = yes\n") +
                            "[tls]\nlisten = 0.0.0.0:8443\ncertificate = tls/site.pem\nkey = /etc/k.pem\n"
                            "sni_certificates = a.pem:a.key, /x/b.pem:/x/b.key\nmin_version = TLSv1.3\n"
                            "session_tickets = no\nticket_key_rotation = 1h\nredirect_http = yes\nhsts = 365d\n");
  CHECK(config.desync_mode == DesyncMode::kStrictest);
  CHECK(config.user == "stickyproxy");
  CHECK(config.group == "www-data");
  CHECK(config.allow_root);
  CHECK(config.tls.enabled);
  CHECK(config.tls.listen.port == 8443);
  CHECK(config.tls.certificate == "/srv/sp/conf/tls/site.pem");
  CHECK(config.tls.key == "/etc/k.pem");
  REQUIRE(config.tls.sni_certificates.size() == 2);
  CHECK(config.tls.sni_certificates[0] == std::make_pair(std::string("/srv/sp/conf/a.pem"), std::string("/srv/sp/conf/a.key")));
  CHECK(config.tls.sni_certificates[1] == std::make_pair(std::string("/x/b.pem"), std::string("/x/b.key")));
  CHECK(config.tls.min_version == "TLSv1.3");
  CHECK_FALSE(config.tls.session_tickets);
  CHECK(config.tls.ticket_key_rotation == hours(1));
  CHECK(config.tls.redirect_http);
  CHECK(config.tls.hsts == hours(24 * 365));
  CHECK(defaults.tls.hsts.count() == 0);

  CHECK(errorsOf(withProxyKeys("desync_mode = lenient\n")).size() == 1);
  CHECK(errorsOf(withProxyKeys("user = -rf\n")).size() == 1);
  CHECK(errorsOf(withProxyKeys("allow_root = maybe\n")).size() == 1);
  CHECK(errorsOf(withSection("[tls]\nlisten = 0.0.0.0:8443\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: tls.certificate: required key is missing",
                                 "/srv/sp/conf/test.conf:6: tls.key: required key is missing"});
  CHECK(errorsOf(withSection("[tls]\nlisten = 0.0.0.0:8080\ncertificate = c\nkey = k\n")).size() == 1);
  CHECK(errorsOf(withSection("[tls]\nlisten = 0.0.0.0:8443\ncertificate = c\nkey = k\nmin_version = SSLv3\n")).size() == 1);
  CHECK(errorsOf(withSection("[tls]\nlisten = 0.0.0.0:8443\ncertificate = c\nkey = k\nsni_certificates = nokey\n")).size() == 1);
}

TEST_CASE("the per-client limit keys parse, default to off and refuse bad values", "[config]") {
  Config defaults = mustParse(kMinimal);
  CHECK(defaults.limits.per_client_connections == 0);
  CHECK(defaults.limits.per_client_rate == 0);
  CHECK(defaults.limits.per_client_rate_period == seconds(1));
  CHECK(defaults.limits.client_table_size == 100000);
  CHECK(defaults.timeouts.client_send_idle == seconds(60));

  Config config = mustParse(withSection("[limits]\nper_client_connections = 20\nper_client_rate = 300/1m\n"
                                        "client_table_size = 20000\n[timeouts]\nclient_send_idle = 15s\n"));
  CHECK(config.limits.per_client_connections == 20);
  CHECK(config.limits.per_client_rate == 300);
  CHECK(config.limits.per_client_rate_period == minutes(1));
  CHECK(config.limits.client_table_size == 20000);
  CHECK(config.timeouts.client_send_idle == seconds(15));
  Config per_second = mustParse(withSection("[limits]\nper_client_rate = 50\n"));
  CHECK(per_second.limits.per_client_rate == 50);
  CHECK(per_second.limits.per_client_rate_period == seconds(1));

  for (const char* bad : {"per_client_rate = fast\n", "per_client_rate = 10/\n", "per_client_rate = 10/0s\n",
                          "per_client_rate = /1s\n", "per_client_rate = 10/1x\n", "per_client_rate = -1\n",
                          "per_client_connections = many\n", "client_table_size = 0\n"}) {
    CAPTURE(bad);
    CHECK(errorsOf(withSection(std::string("[limits]\n") + bad)).size() == 1);
  }
  CHECK(errorsOf(withSection("[timeouts]\nclient_send_idle = 0s\n")).size() == 1);
  // A table smaller than the connections it must count would let clients through uncounted.
  std::vector<std::string> errors =
      errorsOf(withSection("[limits]\nper_client_connections = 5\nmax_client_connections = 500\nclient_table_size = 400\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("limits.client_table_size: client_table_size (400) must exceed max_client_connections (500)") !=
        std::string::npos);
}

TEST_CASE("access_log is all or errors, all by default", "[config]") {
  CHECK(mustParse(kMinimal).access_log_all);
  CHECK(errorsOf("[proxy]\nlisten = 0.0.0.0:8080\nstate_dir = /srv/sp/state\naccess_log = off\n"
                 "[worker w1]\naddress = 127.0.0.1:9001\n") ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:4: proxy.access_log: \"off\" is not one of: all, errors"});
}

TEST_CASE("a key set twice in a section is an error, except env", "[config]") {
  CHECK(errorsOf(withSection("[routing]\ncookie_name = a\n\ncookie_name = b\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:9: routing.cookie_name: duplicate key (first set on line 7)"});
  SECTION("a section may be reopened, but its keys still count once") {
    CHECK(errorsOf(kMinimal + "[proxy]\nlisten = 0.0.0.0:9\n") ==
          std::vector<std::string>{
              "/srv/sp/conf/test.conf:7: proxy.listen: duplicate key (first set on line 2)"});
  }
  SECTION("env repeats, but one variable may be set only once per worker") {
    CHECK(errorsOf(withSection("[worker w2]\naddress = 127.0.0.1:9002\ncommand = app\n"
                               "env = A=1\nenv = B=2\nenv = A=3\n")) ==
          std::vector<std::string>{
              "/srv/sp/conf/test.conf:11: worker.w2.env: A is already set on line 9"});
  }
}

TEST_CASE("worker names must be valid and unique", "[config]") {
  CHECK(errorsOf(withSection("[worker w1]\naddress = 127.0.0.1:9002\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:6: worker.w1: duplicate worker name (first defined on line 4)"});
  CHECK(errorsOf(withSection("[worker bad.name]\naddress = 127.0.0.1:9002\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: invalid worker name \"bad.name\" "
                                 "(1 to 32 of A-Z a-z 0-9 _ -)"});
  CHECK(errorsOf(withSection("[worker " + std::string(33, 'a') + "]\n")).size() == 1);
  CHECK(errorsOf(withSection("[worker " + std::string(32, 'a') + "]\naddress = 127.0.0.1:2\n"))
            .empty());
  CHECK(errorsOf(withSection("[worker]\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: malformed section header: "
                                 "missing worker name, use [worker NAME]"});
}

TEST_CASE("missing required keys are reported on the section header, or without a line",
          "[config]") {
  CHECK(errorsOf("[limits]\nmax_headers = 5\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf: proxy.listen: required key is missing",
            "/srv/sp/conf/test.conf: proxy.state_dir: required key is missing",
            "/srv/sp/conf/test.conf: at least one [worker NAME] section is required"});
  CHECK(errorsOf("\n[proxy]\nlisten = 127.0.0.1:1\n[worker w1]\ncommand = app\n") ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:2: proxy.state_dir: required key is missing",
            "/srv/sp/conf/test.conf:4: worker.w1.address: required key is missing"});
  CHECK(errorsOf(withSection("[routing]\nkey_source = app_cookie\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:6: routing.app_cookie_name: "
                                 "required when key_source = app_cookie"});
}

TEST_CASE("bad values name the key and quote the value", "[config]") {
  struct Case {
    std::string section;
    std::string line;
    std::string expected;
  };
  const Case cases[] = {
      {"routing", "cookie_name = a b",
       "routing.cookie_name: \"a b\" is not a valid cookie name (RFC 6265 token)"},
      {"routing", "cookie_name = a;b",
       "routing.cookie_name: \"a;b\" is not a valid cookie name (RFC 6265 token)"},
      {"routing", "app_cookie_name = s=1",
       "routing.app_cookie_name: \"s=1\" is not a valid cookie name (RFC 6265 token)"},
      {"routing", "key_source = header",
       "routing.key_source: \"header\" is not a valid key source (use proxy_cookie or app_cookie)"},
      {"routing", "virtual_nodes = 0", "routing.virtual_nodes: \"0\" is out of range (1..10000)"},
      {"routing", "virtual_nodes = 10001",
       "routing.virtual_nodes: \"10001\" is out of range (1..10000)"},
      {"health_check", "path = ping", "health_check.path: \"ping\" must start with '/'"},
      {"proxy", "admin_group = no-such-group-stickyproxy", "proxy.admin_group: no group \"no-such-group-stickyproxy\" on this host"},
      {"proxy", "admin_group = a b", "proxy.admin_group: \"a b\" is not a group name"},
      {"health_check", "path = /a\tb",
       "health_check.path: \"/a\tb\" must not contain spaces or control characters"},
      {"health_check", "rise = 0", "health_check.rise: \"0\" is out of range (1..4294967295)"},
      {"health_check", "fall = 0", "health_check.fall: \"0\" is out of range (1..4294967295)"},
      {"limits", "max_headers = 1k",
       "limits.max_headers: \"1k\" is not a valid integer: unexpected \"k\" after the number"},
      {"limits", "max_headers = 4294967296",
       "limits.max_headers: \"4294967296\" is out of range (1..4294967295)"},
      {"limits", "max_header_bytes = 4g",
       "limits.max_header_bytes: \"4g\" is out of range (1..4294967295)"},
      {"limits", "write_buffer_high = 0",
       "limits.write_buffer_high: \"0\" is out of range (1..4294967295)"},
      {"timeouts", "queue = 0s", "timeouts.queue: \"0s\" must be greater than zero"},
      {"timeouts", "queue = 30",
       "timeouts.queue: \"30\" is not a valid duration: missing unit (ms, s, m, h or d)"},
      {"timeouts", "queue =",
       "timeouts.queue: empty value: expected an integer followed by ms, s, m, h or d, e.g. 10s"},
      {"proxy", "metrics_listen = 9090",
       "proxy.metrics_listen: \"9090\" is not a valid address: missing port (expected host:port)"},
      {"proxy", "metrics_listen = metrics.internal:9090",
       "proxy.metrics_listen: \"metrics.internal:9090\" is not a valid address: host "
       "\"metrics.internal\" is not an IP address (host names are not resolved: use an IP "
       "literal, [IPv6] or localhost)"},
      {"proxy", "metrics_listen = ::1:9090",
       "proxy.metrics_listen: \"::1:9090\" is not a valid address: IPv6 addresses need brackets, "
       "e.g. [::1]:8080"},
      {"proxy", "metrics_listen = 127.0.0.1:65536",
       "proxy.metrics_listen: \"127.0.0.1:65536\" is not a valid address: port must be an integer "
       "from 0 to 65535"},
      {"proxy", "metrics_listen = unix:/tmp/m.sock",
       "proxy.metrics_listen: \"unix:/tmp/m.sock\" is not a valid address here: expected "
       "host:port (TCP)"},
      {"proxy", "admin_socket = /" + std::string(107, 'a'),
       "proxy.admin_socket: unix socket path \"/" + std::string(107, 'a') +
           "\" is 108 bytes long; the limit is 107"},
      {"proxy", "trusted_proxies = 10.0.0.1/8",
       "proxy.trusted_proxies: \"10.0.0.1/8\" is not a valid CIDR: host bits are set (the "
       "network is 10.0.0.0/8)"},
      {"proxy", "trusted_proxies = 10.0.0.0/33",
       "proxy.trusted_proxies: \"10.0.0.0/33\" is not a valid CIDR: prefix length must be an "
       "integer from 0 to 32"},
      {"proxy", "trusted_proxies = 10.0.0.0/8,",
       "proxy.trusted_proxies: empty entry in the list \"10.0.0.0/8,\""},
      {"worker w2", "address = unix:",
       "worker.w2.address: \"unix:\" is not a valid address: empty unix socket path"},
      {"worker w2", "address = 10.1.2.3:0",
       "worker.w2.address: \"10.1.2.3:0\" is not a valid worker address: port 0 is only for "
       "listeners"},
      {"worker w2", "address = backend:80",
       "worker.w2.address: \"backend:80\" is not a valid address: host \"backend\" is not an IP "
       "address (host names are not resolved: use an IP literal, [IPv6] or localhost)"},
      {"worker w2", "env = 9LIVES=1",
       "worker.w2.env: \"9LIVES\" is not a valid environment variable name "
       "([A-Za-z_][A-Za-z0-9_]*)"},
      {"worker w2", "env = JUSTNAME", "worker.w2.env: \"JUSTNAME\" is not NAME=VALUE"},
      {"worker w2", "args = --title \"unfinished  # not a comment inside quotes",
       "worker.w2.args: unterminated double quote (opened at character 9 of the value)"},
      {"worker w2", "command =",
       "worker.w2.command: empty command (omit the key for an external worker)"},
  };
  for (const Case& c : cases) {
    // The section starts on line 6; the key is on line 7. Workers get a command so that
    // their args and env are legal, and an address unless the case sets one.
    std::string body = "[" + c.section + "]\n" + c.line + "\n";
    bool worker = c.section.starts_with("worker");
    if (worker && !c.line.starts_with("command")) body += "command = app\n";
    if (worker && !c.line.starts_with("address")) body += "address = 127.0.0.1:9002\n";
    INFO(c.line);
    CHECK(errorsOf(withSection(body)) ==
          std::vector<std::string>{"/srv/sp/conf/test.conf:7: " + c.expected});
  }
}

TEST_CASE("checks across keys report on the key that breaks them", "[config]") {
  CHECK(errorsOf(withSection("[supervisor]\nrestart_backoff_initial = 1m\nrestart_backoff_max = 10s\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:8: supervisor.restart_backoff_max: restart_backoff_max (10s) is "
            "less than restart_backoff_initial (1m)"});
  CHECK(errorsOf(withSection("[supervisor]\nrestart_backoff_initial = 1m\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:7: supervisor.restart_backoff_initial: restart_backoff_max "
            "(30s) is less than restart_backoff_initial (1m)"});
  CHECK(errorsOf(withSection("[limits]\nmax_request_line = 64k\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:7: limits.max_request_line: max_request_line (65536 bytes) "
            "exceeds max_header_bytes (32768 bytes)"});
  CHECK(errorsOf(withSection("[limits]\nretry_buffer_total = 1m\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:7: limits.retry_buffer_total: retry_buffer_total (1048576 bytes) "
            "is less than retry_buffer (8388608 bytes): no body that size could ever be kept"});
  CHECK(errorsOf(withSection("[limits]\nretry_buffer = 0\nretry_buffer_total = 0\n")).empty());
  CHECK(errorsOf(withSection("[routing]\ncookie_name = sid\nkey_source = app_cookie\n"
                             "app_cookie_name = sid\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:9: routing.app_cookie_name: \"sid\" must differ from "
            "cookie_name"});
  CHECK(errorsOf(withProxyKeys("metrics_listen = 0.0.0.0:8080\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:4: proxy.metrics_listen: 0.0.0.0:8080 is also the listen "
            "address"});
}

TEST_CASE("a worker may not share an address with another worker or the proxy", "[config]") {
  CHECK(errorsOf(withSection("[worker w2]\naddress = 127.0.0.1:9001\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:7: worker.w2.address: 127.0.0.1:9001 is "
                                 "already used by worker w1"});
  CHECK(errorsOf(withSection("[worker w2]\naddress = unix:/srv/sp/a.sock\n"
                             "[worker w3]\naddress = unix:../a.sock\n")) ==
        std::vector<std::string>{"/srv/sp/conf/test.conf:9: worker.w3.address: unix:/srv/sp/a.sock "
                                 "is already used by worker w2"});
  SECTION("the listen address, also through a wildcard listener on loopback") {
    CHECK(errorsOf(withSection("[worker w2]\naddress = 0.0.0.0:8080\n"
                               "[worker w3]\naddress = localhost:8080\n"
                               "[worker w4]\naddress = 10.0.0.5:8080\n")) ==
          std::vector<std::string>{
              "/srv/sp/conf/test.conf:7: worker.w2.address: 0.0.0.0:8080 is the proxy's own "
              "listen address",
              "/srv/sp/conf/test.conf:9: worker.w3.address: 127.0.0.1:8080 is the proxy's own "
              "listen address"});
  }
  SECTION("the metrics listener and the admin socket") {
    CHECK(errorsOf(withSection("[worker w2]\naddress = 127.0.0.1:9090\n"
                               "[worker w3]\naddress = unix:/srv/sp/state/admin.sock\n")) ==
          std::vector<std::string>{
              "/srv/sp/conf/test.conf:7: worker.w2.address: 127.0.0.1:9090 is the proxy's own "
              "metrics_listen address",
              "/srv/sp/conf/test.conf:9: worker.w3.address: unix:/srv/sp/state/admin.sock is the "
              "proxy's own admin_socket address"});
  }
}

TEST_CASE("an external worker may not have args or env", "[config]") {
  CHECK(errorsOf(withSection("[worker w2]\naddress = 127.0.0.1:9002\nargs = -v\nenv = A=1\n")) ==
        std::vector<std::string>{
            "/srv/sp/conf/test.conf:8: worker.w2.args: only allowed with command (an external "
            "worker is not started by the proxy)",
            "/srv/sp/conf/test.conf:9: worker.w2.env: only allowed with command (an external "
            "worker is not started by the proxy)"});
}

TEST_CASE("every problem in a file is reported at once, sorted by line", "[config]") {
  std::vector<std::string> errors = errorsOf(
      "[proxy]\n"                        // 1
      "listen = 0.0.0.0:80\n"            // 2
      "[timeouts]\n"                     // 3
      "queue = 5x\n"                     // 4
      "[routing]\n"                      // 5
      "cookie_name = \"x\"\n"            // 6
      "mystery = 1\n"                    // 7
      "[worker w1]\n"                    // 8
      "address = 127.0.0.1:81\n"         // 9
      "[worker w1]\n"                    // 10
      "address = 127.0.0.1:81\n"         // 11
      "oops\n",                          // 12
      "conf/bad.conf");
  CHECK(errors == std::vector<std::string>{
                      "conf/bad.conf:1: proxy.state_dir: required key is missing",
                      "conf/bad.conf:4: timeouts.queue: \"5x\" is not a valid duration: unknown "
                      "unit \"x\" (use ms, s, m, h or d)",
                      "conf/bad.conf:6: routing.cookie_name: \"\"x\"\" is not a valid cookie name "
                      "(RFC 6265 token)",
                      "conf/bad.conf:7: routing.mystery: unknown key",
                      "conf/bad.conf:10: worker.w1: duplicate worker name (first defined on line 8)",
                      "conf/bad.conf:12: expected \"key = value\" or a [section] header",
                  });
}

TEST_CASE("comments, blank lines, CRLF and a byte order mark are accepted", "[config]") {
  Config config = mustParse(
      "\xEF\xBB\xBF# leading comment\r\n"
      "   # indented comment\r\n"
      "\r\n"
      "[proxy]   # section comment\r\n"
      "listen = 0.0.0.0:8080 # trailing comment\r\n"
      "state_dir = /srv/sp/state\t# after a tab\r\n"
      "[routing]\r\n"
      "cookie_name = a#b\r\n"
      "[worker w1]\r\n"
      "address = 127.0.0.1:9001\r\n"
      "command = app\r\n"
      "args = \"#1\" \\\"#2 #3\r\n");
  CHECK(config.listen.toString() == "0.0.0.0:8080");
  CHECK(config.state_dir == "/srv/sp/state");
  CHECK(config.routing.cookie_name == "a#b");  // '#' not after whitespace is part of the value
  CHECK(config.workers[0].args == std::vector<std::string>{"#1", "\"#2"});
}

TEST_CASE("durations need an integer and one unit of ms, s, m, h or d", "[config]") {
  std::string error;
  CHECK(parseDuration("0ms", &error) == milliseconds(0));
  CHECK(parseDuration("500ms", &error) == milliseconds(500));
  CHECK(parseDuration("10s", &error) == seconds(10));
  CHECK(parseDuration("2m", &error) == minutes(2));
  CHECK(parseDuration("1h", &error) == hours(1));
  CHECK(parseDuration("7d", &error) == hours(24 * 7));
  CHECK(parseDuration("0007s", &error) == seconds(7));
  // The largest count of days that fits in int64 milliseconds, and one more.
  CHECK(parseDuration("106751991167d", &error) == hours(24) * 106751991167LL);
  CHECK(durationError("106751991168d") == "\"106751991168d\" is not a valid duration: too large");
  CHECK(parseDuration("9223372036854775807ms", &error) == milliseconds(INT64_MAX));
  CHECK(durationError("9223372036854775808ms") ==
        "\"9223372036854775808ms\" is not a valid duration: too large");
  CHECK(durationError("99999999999999999999999s") ==
        "\"99999999999999999999999s\" is not a valid duration: too large");
  CHECK(durationError("10") == "\"10\" is not a valid duration: missing unit (ms, s, m, h or d)");
  CHECK(durationError("-1s") == "\"-1s\" is not a valid duration: negative values are not allowed");
  CHECK(durationError("+1s") == "\"+1s\" is not a valid duration: signs are not allowed");
  CHECK(durationError("s") ==
        "\"s\" is not a valid duration: expected an integer followed by ms, s, m, h or d, e.g. 10s");
  CHECK(durationError("10S") ==
        "\"10S\" is not a valid duration: unknown unit \"S\" (use ms, s, m, h or d)");
  CHECK(durationError("1m30s") ==
        "\"1m30s\" is not a valid duration: unknown unit \"m30s\" (use ms, s, m, h or d)");
  CHECK(durationError("2.5s") ==
        "\"2.5s\" is not a valid duration: fractions are not allowed; use a smaller unit, e.g. "
        "1500ms");
  CHECK(durationError("") ==
        "empty value: expected an integer followed by ms, s, m, h or d, e.g. 10s");
}

TEST_CASE("sizes are bytes or k, m, g multiples of 1024 in either case", "[config]") {
  std::string error;
  CHECK(parseSize("0", &error) == 0u);
  CHECK(parseSize("512", &error) == 512u);
  CHECK(parseSize("8k", &error) == 8192u);
  CHECK(parseSize("8K", &error) == 8192u);
  CHECK(parseSize("3m", &error) == 3u * 1024 * 1024);
  CHECK(parseSize("1G", &error) == 1024u * 1024 * 1024);
  CHECK(parseSize("18446744073709551615", &error) == UINT64_MAX);
  CHECK(parseSize("17179869183g", &error) == 17179869183ull << 30);
  CHECK(sizeError("17179869184g") == "\"17179869184g\" is not a valid size: too large");
  CHECK(sizeError("18446744073709551616") ==
        "\"18446744073709551616\" is not a valid size: too large");
  CHECK(sizeError("-1k") == "\"-1k\" is not a valid size: negative values are not allowed");
  CHECK(sizeError("8kb") == "\"8kb\" is not a valid size: unknown unit \"kb\" (use k, m or g)");
  CHECK(sizeError("1t") == "\"1t\" is not a valid size: unknown unit \"t\" (use k, m or g)");
  CHECK(sizeError("k") ==
        "\"k\" is not a valid size: expected an integer optionally followed by k, m or g, e.g. 32k");
}

TEST_CASE("plain integers reject suffixes, signs and overflow", "[config]") {
  std::string error;
  CHECK(parseUnsigned("0", &error) == 0u);
  CHECK(parseUnsigned("18446744073709551615", &error) == UINT64_MAX);
  CHECK_FALSE(parseUnsigned("18446744073709551616", &error));
  CHECK(error == "\"18446744073709551616\" is not a valid integer: too large");
  CHECK_FALSE(parseUnsigned("-3", &error));
  CHECK(error == "\"-3\" is not a valid integer: negative values are not allowed");
  CHECK_FALSE(parseUnsigned("12 ", &error));
  CHECK(error == "\"12 \" is not a valid integer: unexpected \" \" after the number");
}

TEST_CASE("argument lists split on blanks, with quotes and two escapes", "[config]") {
  std::string error;
  using Words = std::vector<std::string>;
  CHECK(splitArgs("", &error) == Words{});
  CHECK(splitArgs("  a \t b  ", &error) == Words{"a", "b"});
  CHECK(splitArgs("\"a b\"c d", &error) == Words{"a bc", "d"});
  CHECK(splitArgs("\"\" x", &error) == Words{"", "x"});
  CHECK(splitArgs("\\\"q\\\" \\\\ \\n", &error) == Words{"\"q\"", "\\", "\\n"});
  CHECK(splitArgs("\"in \\\"quotes\\\"\"", &error) == Words{"in \"quotes\""});
  CHECK_FALSE(splitArgs("a \"b", &error));
  CHECK(error == "unterminated double quote (opened at character 3 of the value)");
  CHECK_FALSE(splitArgs("\\\\\"", &error));  // \\ is a backslash, so the quote opens
}

TEST_CASE("addresses parse as unix paths, IPv4, bracketed IPv6 or localhost", "[config]") {
  std::string error;
  std::optional<Address> address = parseAddress("[0:0::1]:80", &error);
  REQUIRE(address);
  CHECK(address->kind == Address::Kind::kTcp);
  CHECK(address->host == "::1");
  CHECK(address->toString() == "[::1]:80");
  address = parseAddress("localhost:8080", &error);
  REQUIRE(address);
  CHECK(address->toString() == "127.0.0.1:8080");
  address = parseAddress("unix:rel/w.sock", &error);
  REQUIRE(address);
  CHECK(address->kind == Address::Kind::kUnix);
  CHECK(address->path == "rel/w.sock");  // resolved by the config loader, not here
  CHECK(address->toString() == "unix:rel/w.sock");
  CHECK_FALSE(parseAddress("[::1]8080", &error));
  CHECK(error == "\"[::1]8080\" is not a valid address: expected [IPv6]:port");
  CHECK_FALSE(parseAddress(":8080", &error));
  CHECK(error == "\":8080\" is not a valid address: missing host");
}

TEST_CASE("CIDRs match IPv4, IPv6 and IPv4-mapped IPv6 peers", "[config]") {
  Cidr ten = cidr("10.0.0.0/8");
  CHECK(contains(ten, v4Peer("10.0.0.0")));
  CHECK(contains(ten, v4Peer("10.255.255.255")));
  CHECK_FALSE(contains(ten, v4Peer("11.0.0.0")));
  CHECK_FALSE(contains(ten, v4Peer("9.255.255.255")));
  CHECK(contains(ten, v6Peer("::ffff:10.1.2.3")));
  CHECK_FALSE(contains(ten, v6Peer("::ffff:11.1.2.3")));
  CHECK_FALSE(contains(ten, v6Peer("::a01:203")));  // IPv4-compatible, not mapped
  CHECK_FALSE(contains(ten, v6Peer("2001:db8::1")));

  Cidr odd = cidr("172.16.0.0/12");
  CHECK(contains(odd, v4Peer("172.31.255.255")));
  CHECK_FALSE(contains(odd, v4Peer("172.32.0.0")));

  Cidr host = cidr("127.0.0.1");
  CHECK(host.prefix_len == 32);
  CHECK(contains(host, v4Peer("127.0.0.1")));
  CHECK(contains(host, v6Peer("::ffff:127.0.0.1")));
  CHECK_FALSE(contains(host, v4Peer("127.0.0.2")));

  Cidr any4 = cidr("0.0.0.0/0");
  CHECK(contains(any4, v4Peer("203.0.113.9")));
  CHECK_FALSE(contains(any4, v6Peer("2001:db8::1")));

  Cidr v6 = cidr("2001:db8:abcc::/47");
  CHECK(contains(v6, v6Peer("2001:db8:abcc::1")));
  CHECK(contains(v6, v6Peer("2001:db8:abcd:1::1")));  // the 48th bit is outside the prefix
  CHECK_FALSE(contains(v6, v6Peer("2001:db8:abce::1")));
  std::string error;
  CHECK_FALSE(parseCidr("2001:db8:abcd::/47", &error));
  CHECK(error ==
        "\"2001:db8:abcd::/47\" is not a valid CIDR: host bits are set (the network is "
        "2001:db8:abcc::/47)");
  CHECK_FALSE(contains(v6, v4Peer("10.0.0.1")));

  Cidr loopback6 = cidr("::1");
  CHECK(loopback6.prefix_len == 128);
  CHECK(contains(loopback6, v6Peer("::1")));
  CHECK_FALSE(contains(loopback6, v6Peer("::2")));

  Cidr mapped = cidr("::ffff:10.0.0.0/104");
  CHECK(contains(mapped, v4Peer("10.9.8.7")));
  CHECK_FALSE(contains(mapped, v4Peer("11.9.8.7")));

  sockaddr unix_peer{};
  unix_peer.sa_family = AF_UNIX;
  CHECK_FALSE(ten.contains(&unix_peer));
  CHECK_FALSE(ten.contains(nullptr));
}

TEST_CASE("config errors print as file:line: key: message", "[config]") {
  CHECK(ConfigError{"conf/bad.conf", 7, "routing.cookie_name", "bad"}.toString() ==
        "conf/bad.conf:7: routing.cookie_name: bad");
  CHECK(ConfigError{"conf/bad.conf", 7, "", "bad"}.toString() == "conf/bad.conf:7: bad");
  CHECK(ConfigError{"conf/bad.conf", 0, "proxy.listen", "bad"}.toString() ==
        "conf/bad.conf: proxy.listen: bad");
  CHECK(ConfigError{"conf/bad.conf", 0, "", "bad"}.toString() == "conf/bad.conf: bad");
}

TEST_CASE("an unreadable file is reported, not thrown", "[config]") {
  ConfigLoadResult missing = loadConfig("/nonexistent/stickyproxy.conf");
  CHECK_FALSE(missing.config);
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].toString() ==
        "/nonexistent/stickyproxy.conf: cannot read: No such file or directory");
  ConfigLoadResult directory = loadConfig(confDir().string());
  REQUIRE(directory.errors.size() == 1);
  CHECK(directory.errors[0].message == "cannot read: Is a directory");
}

TEST_CASE("the shipped prod.conf and dev.conf load without errors", "[config]") {
  for (const char* file : {"prod.conf", "dev.conf"}) {
    std::filesystem::path path = confDir() / file;
    INFO(path.string());
    ConfigLoadResult result = loadConfig(path.string());
    for (const ConfigError& error : result.errors) FAIL_CHECK(error.toString());
    REQUIRE(result.config);
    const Config& config = *result.config;
    std::filesystem::path root = std::filesystem::absolute(confDir() / "..").lexically_normal();
    std::string root_text = root.string();
    if (root_text.ends_with('/')) root_text.pop_back();
    CHECK(config.state_dir == root_text + "/var/state");
    CHECK(config.admin_socket == root_text + "/var/run/admin.sock");
    CHECK(config.metrics_listen.toString() == "127.0.0.1:9090");
    CHECK(config.timeouts.upstream_response == seconds(120));
    REQUIRE(config.workers.size() == 4);
    for (size_t i = 0; i < 4; ++i) {
      const WorkerConfig& worker = config.workers[i];
      std::string name = "w" + std::to_string(i + 1);
      CHECK(worker.name == name);
      CHECK(worker.address.toString() == "unix:" + root_text + "/var/run/" + name + ".sock");
      CHECK(worker.command == root_text + "/build/stickyproxy-backend");
      // The worker's identity and place first; app options (e.g. the session idle time) may follow.
      const std::vector<std::string> identity{"--name", "{name}", "--listen", "{address}", "--state-dir", "{state_dir}"};
      REQUIRE(worker.args.size() >= identity.size());
      CHECK(std::vector<std::string>(worker.args.begin(), worker.args.begin() + 6) == identity);
    }
  }
  Config prod = *loadConfig((confDir() / "prod.conf").string()).config;
  CHECK(prod.listen.toString() == "0.0.0.0:8080");
  CHECK(prod.trusted_proxies.size() == 4);
  CHECK(contains(prod.trusted_proxies[0], v4Peer("10.20.30.40")));
  Config dev = *loadConfig((confDir() / "dev.conf").string()).config;
  CHECK(dev.listen.toString() == "127.0.0.1:8080");
}

}  // namespace
}  // namespace stickyproxy
