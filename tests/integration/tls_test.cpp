// stickyproxy end to end over TLS: certificates made here with the `openssl` command, curl and
// a small OpenSSL client of our own as browsers: sessions stay on their worker, cookies are
// Secure, SNI picks the certificate, tickets resume sessions, SIGHUP swaps certificates
// without dropping a connection, and failed handshakes are counted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>

#include "tests/integration/harness.h"
#include "tests/integration/metrics_scrape.h"

using namespace stickyproxy::integration;

namespace {

// Runs a shell command; throws with its output when it fails.
void run(const std::string& command, const std::string& log) {
  if (std::system((command + " >>" + log + " 2>&1").c_str()) != 0) {
    throw HarnessError("command failed: " + command + "\n" + readFile(log));
  }
}

// A test CA and certificates it signed, in `dir`: <name>.pem (leaf then CA) and <name>.key.
class TestCertificates {
 public:
  explicit TestCertificates(const TempDir& dir) : dir_(dir), log_(dir.file("openssl.log")) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=stickyproxy-test-ca"
        " -keyout " + dir_.file("ca.key") + " -out " + ca(), log_);
  }
  std::string ca() const { return dir_.file("ca.pem"); }
  std::string chain(const std::string& name) const { return dir_.file(name + ".pem"); }
  std::string key(const std::string& name) const { return dir_.file(name + ".key"); }

  // A certificate for the DNS name `host` (and 127.0.0.1), stored as `name`.
  void issue(const std::string& name, const std::string& host) {
    std::string ext = dir_.file(name + ".ext");
    writeFile(ext, "subjectAltName=DNS:" + host + ",IP:127.0.0.1\n");
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + host + " -keyout " + key(name) +
            " -out " + dir_.file(name + ".csr"),
        log_);
    run("openssl x509 -req -in " + dir_.file(name + ".csr") + " -CA " + ca() + " -CAkey " + dir_.file("ca.key") +
            " -CAcreateserial -days 2 -extfile " + ext + " -out " + dir_.file(name + ".leaf"),
        log_);
    writeFile(chain(name), readFile(dir_.file(name + ".leaf")) + readFile(ca()));
  }

 private:
  const TempDir& dir_;
  std::string log_;
};

// One blocking TLS connection to 127.0.0.1:`port` that verifies the server against `ca_file`
// for the name `host`, and speaks HTTP/1.1 on it.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& ca_file, const std::string& host, SSL_SESSION* resume = nullptr) {
    context_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(context_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw HarnessError("connect to TLS port failed");
    }
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ssl_ = SSL_new(context_);
    SSL_set_fd(ssl_, fd_);
    // SSL_set_tlsext_host_name's expansion, without its C cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
    SSL_set1_host(ssl_, host.c_str());
    if (resume != nullptr) SSL_set_session(ssl_, resume);
    handshake_ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    if (fd_ >= 0) ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool handshakeOk() const { return handshake_ok_; }
  bool resumed() const { return SSL_session_reused(ssl_) == 1; }
  std::string version() const { return SSL_get_version(ssl_); }
  // The CN of the certificate the server presented.
  std::string peerName() const {
    X509* certificate = SSL_get0_peer_certificate(ssl_);
    if (certificate == nullptr) return "";
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
    return name;
  }
  SSL_SESSION* session() const { return SSL_get1_session(ssl_); }

  // GET `path` on this connection; returns the whole response (head and body), "" on failure.
  std::string get(const std::string& path, const std::string& host) {
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return "";
    std::string response;
    char buffer[16384];
    while (true) {
      size_t head_end = response.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length_at = response.find("Content-Length: ");
        if (length_at != std::string::npos && length_at < head_end) {
          size_t length = std::stoul(response.substr(length_at + 16));
          if (response.size() >= head_end + 4 + length) return response;
        }
      }
      int got = SSL_read(ssl_, buffer, sizeof buffer);
      if (got <= 0) return response;
      response.append(buffer, static_cast<size_t>(got));
    }
  }

 private:
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
};

// standardConfig with a [tls] section on 127.0.0.1:`tls_port` serving `certs`' "site" (and
// "other" by SNI); `extra` goes into the section.
std::string tlsConfig(const TestCertificates& certs, uint16_t tls_port, const std::string& extra = "") {
  return ProxyUnderTest::standardConfig(2, "test-worker") + "\n[tls]\nlisten = 127.0.0.1:" + std::to_string(tls_port) +
         "\ncertificate = " + certs.chain("site") + "\nkey = " + certs.key("site") +
         "\nsni_certificates = " + certs.chain("other") + ":" + certs.key("other") + "\n" + extra;
}

// A started proxy with the standard workers and TLS on a free port, serving "site" (localhost)
// and "other" (other.test) from a fresh test CA.
struct TlsProxy {
  TempDir dir{"stickyproxy-tls"};
  TestCertificates certs{dir};
  uint16_t tls_port = freePort();
  std::unique_ptr<ProxyUnderTest> proxy;

  TlsProxy() {
    certs.issue("site", "localhost");
    certs.issue("other", "other.test");
    proxy = std::make_unique<ProxyUnderTest>(tlsConfig(certs, tls_port, "hsts = 1d\n"));
    proxy->start();
  }
  std::tuple<const TempDir&, TestCertificates&, uint16_t, ProxyUnderTest&> parts() {
    return {dir, certs, tls_port, *proxy};
  }
};

std::string headerOf(const std::string& response, const std::string& name) {
  size_t at = response.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  at += name.size() + 4;
  return response.substr(at, response.find("\r\n", at) - at);
}

}  // namespace

TEST_CASE("curl over TLS reaches a worker, its session stays there, and cookies are Secure", "[integration][tls]") {
  TlsProxy setup;
  auto [dir, certs, tls_port, proxy] = setup.parts();

  std::string jar = dir.file("jar");
  std::string curl = "curl -sS --max-time 10 --cacert " + certs.ca() + " --resolve localhost:" + std::to_string(tls_port) +
                     ":127.0.0.1 -c " + jar + " -b " + jar + " -D " + dir.file("head") + " -o " + dir.file("body") +
                     " https://localhost:" + std::to_string(tls_port) + "/whoami";
  run(curl, dir.file("curl.log"));
  std::string head = readFile(dir.file("head"));
  std::string worker = readFile(dir.file("body"));
  INFO(head);
  CHECK(head.starts_with("HTTP/1.1 200"));
  CHECK(headerOf(head, "X-Seen-Forwarded-Proto") == "https");
  std::string set_cookie = headerOf(head, "Set-Cookie");
  CHECK(set_cookie.starts_with(kCookieName + "="));
  CHECK(set_cookie.find("; Secure") != std::string::npos);
  CHECK(headerOf(head, "Strict-Transport-Security") == "max-age=86400");
  for (int i = 0; i < 5; ++i) {
    run(curl, dir.file("curl.log"));
    CHECK(readFile(dir.file("body")) == worker);
  }
  // The plain listener still serves, and its cookies are not Secure.
  HttpClient plain = proxy.client();
  Response answer = plain.get("/whoami");
  CHECK(answer.status == 200);
  CHECK(answer.header("Set-Cookie").value_or("").find("Secure") == std::string::npos);
  CHECK_FALSE(answer.header("Strict-Transport-Security").has_value());
}

TEST_CASE("TLS: SNI picks the certificate, tickets resume sessions, only TLS 1.2 and 1.3", "[integration][tls]") {
  TlsProxy setup;
  auto [dir, certs, tls_port, proxy] = setup.parts();

  TlsClient site(tls_port, certs.ca(), "localhost");
  REQUIRE(site.handshakeOk());
  CHECK(site.peerName() == "localhost");
  CHECK(site.version() == "TLSv1.3");
  CHECK(site.get("/ping", "localhost").starts_with("HTTP/1.1 200"));
  TlsClient other(tls_port, certs.ca(), "other.test");
  REQUIRE(other.handshakeOk());
  CHECK(other.peerName() == "other.test");

  // The ticket of the first connection resumes a second one.
  SSL_SESSION* ticket = site.session();
  REQUIRE(ticket != nullptr);
  TlsClient again(tls_port, certs.ca(), "localhost", ticket);
  SSL_SESSION_free(ticket);
  REQUIRE(again.handshakeOk());
  CHECK(again.resumed());

  // TLS 1.1 is refused and counted; so is plain HTTP sent to the TLS port.
  int old = std::system(("openssl s_client -tls1_1 -connect 127.0.0.1:" + std::to_string(tls_port) +
                         " </dev/null >" + dir.file("s_client.log") + " 2>&1")
                            .c_str());
  CHECK(old != 0);
  HttpClient plain_to_tls(tls_port, 10s);
  plain_to_tls.sendRaw("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK(plain_to_tls.waitForClose(5s));
  Samples samples = scrape(proxy.metricsPort()).samples;
  CHECK(valueOr(samples, "stickyproxy_tls_errors_total{reason=\"plain_http\"}") == 1);
  CHECK(valueOr(samples, "stickyproxy_tls_errors_total{reason=\"protocol_version\"}") +
            valueOr(samples, "stickyproxy_tls_errors_total{reason=\"handshake_failed\"}") >=
        1);
  CHECK(proxy.running());
}

TEST_CASE("SIGHUP loads new certificates for new connections and keeps open ones", "[integration][tls]") {
  TlsProxy setup;
  auto [dir, certs, tls_port, proxy] = setup.parts();

  TlsClient open_before(tls_port, certs.ca(), "localhost");
  REQUIRE(open_before.handshakeOk());
  REQUIRE(open_before.get("/ping", "localhost").starts_with("HTTP/1.1 200"));

  // A certificate for another name in the files the config names, then a reload.
  certs.issue("site", "renewed.test");
  proxy.reload();
  bool swapped = false;
  for (auto until = std::chrono::steady_clock::now() + 10s; !swapped && std::chrono::steady_clock::now() < until;) {
    TlsClient probe(tls_port, certs.ca(), "renewed.test");
    swapped = probe.handshakeOk() && probe.peerName() == "renewed.test";
  }
  CHECK(swapped);
  // The connection made before the reload goes on.
  CHECK(open_before.get("/ping", "localhost").starts_with("HTTP/1.1 200"));

  // Files that do not load are refused by the reload: the running certificates stay.
  writeFile(certs.key("site"), "not a key\n");
  proxy.reload();
  // Structured bindings are named through an init-capture: clang 14 cannot capture them.
  CHECK(waitUntil([&started = proxy] { return started.logText().find("keeping the running certificates") != std::string::npos; },
                  10s));
  TlsClient after(tls_port, certs.ca(), "renewed.test");
  CHECK(after.handshakeOk());
}

TEST_CASE("redirect_http sends plain-HTTP requests to the HTTPS listener", "[integration][tls]") {
  // Started without the redirect (the harness checks the plain port), then reloaded with it.
  TlsProxy setup;
  auto [dir, certs, tls_port, proxy] = setup.parts();
  proxy.rewriteConfig(tlsConfig(certs, tls_port, "redirect_http = yes\n"));
  proxy.reload();
  Response answer;
  REQUIRE(waitUntil(
      [&answer, &started = proxy] {
        HttpClient plain = started.client();
        answer = plain.get("/whoami?x=1", {{"Host", "localhost:8080"}});
        return answer.status == 308;
      },
      10s));
  CHECK(answer.header("Location") == "https://localhost:" + std::to_string(tls_port) + "/whoami?x=1");
  TlsClient secure(tls_port, certs.ca(), "localhost");
  REQUIRE(secure.handshakeOk());
  CHECK(secure.get("/whoami", "localhost").starts_with("HTTP/1.1 200"));
}

TEST_CASE("stickyproxy -t names an unreadable certificate and a key that does not match", "[integration][tls]") {
  TempDir dir("stickyproxy-tls");
  TestCertificates certs(dir);
  certs.issue("site", "localhost");
  certs.issue("other", "other.test");
  auto check = [&](const std::string& config_text) {
    ProxyUnderTest proxy(config_text);  // written, never started
    std::string output = dir.file("check.out");
    int status = std::system((binaryPath("stickyproxy") + " -t -c " + proxy.configPath() + " >" + output + " 2>&1").c_str());
    return std::make_pair(status, readFile(output));
  };
  std::string base = ProxyUnderTest::standardConfig(2, "test-worker") + "\n[tls]\nlisten = 127.0.0.1:" +
                     std::to_string(freePort()) + "\ncertificate = " + certs.chain("site") + "\n";
  auto [good_status, good] = check(base + "key = " + certs.key("site") + "\n");
  INFO(good);
  CHECK(good_status == 0);
  auto [mismatch_status, mismatch] = check(base + "key = " + certs.key("other") + "\n");
  INFO(mismatch);
  CHECK(mismatch_status != 0);
  CHECK(mismatch.find("does not match certificate") != std::string::npos);
  auto [missing_status, missing] = check(base + "key = " + dir.file("absent.key") + "\n");
  INFO(missing);
  CHECK(missing_status != 0);
  CHECK(missing.find("absent.key") != std::string::npos);
}
