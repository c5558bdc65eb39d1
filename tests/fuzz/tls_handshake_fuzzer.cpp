// Fuzz target "tls_handshake": the proxy's server-side TLS (proxy/net/tls_session.h) over one
// TlsContext (proxy/net/tls_context.h) with a default and an SNI certificate, fed as Stream feeds
// it with what the socket reads, in two modes.
//
// Handshake mode (byte 0 below 0x80): byte 0 seeds the piece sizes, byte 1 picks the largest
// piece (1 + 8 * byte 1); the rest is the ciphertext stream of the connection. The seeds
// (tests/fuzz/make_tls_seeds.py) are ClientHellos of TLS 1.2 and 1.3, with and without SNI.
// Established mode (byte 0 from 0x80): an OpenSSL client in memory completes a handshake (TLS 1.3,
// or 1.2 when byte 1 has 0x01; SNI sni.test with 0x02), then sends the rest as application data
// in pieces, with a TLS 1.3 KeyUpdate half-way (0x04), one ciphertext byte flipped (0x08, at the
// offset bytes 0 and 1 give), and the server echoing each piece back.
//
// Invariants: no crash, leak or undefined behaviour, also when ciphertext keeps coming after a
// failure or a close_notify; a failed session stays failed, hands out no more plaintext
// (readPlain() is -1) and refuses to send; send() works only once established. Established: the
// handshake completes; the server reads exactly what the client sent, and the client reads the
// echo; with a flipped byte what the server read is a prefix of what was sent (a record never
// decrypts to altered plaintext).
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proxy/net/tls_context.h"
#include "proxy/net/tls_session.h"
#include "tests/fuzz/fuzz_support.h"

namespace stickyproxy::fuzz {
namespace {

void writePem(const std::string& path, EVP_PKEY* key, X509* certificate) {
  FILE* file = std::fopen(path.c_str(), "w");
  FUZZ_CHECK(file != nullptr, "cannot write " + path);
  const int ok = key != nullptr ? PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr)
                                : PEM_write_X509(file, certificate);
  std::fclose(file);
  FUZZ_CHECK(ok == 1, "cannot write " + path);
}

// A self-signed P-256 certificate for `dns_name` and its key, written as PEM files
// <scratch>/<stem>.crt and .key; returns their paths.
std::pair<std::string, std::string> makeCertificate(const std::string& stem, const std::string& dns_name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  FUZZ_CHECK(key != nullptr, "EVP_EC_gen");
  X509* certificate = X509_new();
  X509_set_version(certificate, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
  X509_gmtime_adj(X509_getm_notAfter(certificate), 3650L * 24 * 3600);
  X509_set_pubkey(certificate, key);
  X509_NAME* name = X509_get_subject_name(certificate);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(dns_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(certificate, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, certificate, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, ("DNS:" + dns_name).c_str());
  FUZZ_CHECK(san != nullptr && X509_add_ext(certificate, san, -1) == 1, "subjectAltName");
  X509_EXTENSION_free(san);
  FUZZ_CHECK(X509_sign(certificate, key, EVP_sha256()) > 0, "X509_sign");
  const std::string crt = scratchDir() + "/" + stem + ".crt";
  const std::string pem_key = scratchDir() + "/" + stem + ".key";
  writePem(crt, nullptr, certificate);
  writePem(pem_key, key, nullptr);
  X509_free(certificate);
  EVP_PKEY_free(key);
  return {crt, pem_key};
}

std::shared_ptr<TlsContext>& context() {
  static std::shared_ptr<TlsContext> value;
  return value;
}

// Reads plaintext until readPlain() has none; checks what a failed session may do.
void drain(TlsSession& session) {
  char buffer[4096];
  for (;;) {
    const long n = session.readPlain(buffer, sizeof buffer);
    if (session.failed()) FUZZ_CHECK(n == -1, "a failed session read " + std::to_string(n));
    FUZZ_CHECK(n >= -1 && n <= static_cast<long>(sizeof buffer), "readPlain() returned " + std::to_string(n));
    if (n <= 0) return;
  }
}

// Reads every plaintext byte the session has into `into`.
void drainInto(TlsSession& session, std::string* into) {
  char buffer[4096];
  for (;;) {
    const long n = session.readPlain(buffer, sizeof buffer);
    if (n <= 0) return;
    into->append(buffer, static_cast<size_t>(n));
  }
}

// An OpenSSL client over memory BIOs, talking to a TlsSession by hand.
class MemoryClient {
 public:
  MemoryClient(bool tls12, bool sni) {
    context_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(context_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_min_proto_version(context_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(context_, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    ssl_ = SSL_new(context_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    if (sni) SSL_set_tlsext_host_name(ssl_, "sni.test");
  }
  ~MemoryClient() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
  }
  MemoryClient(const MemoryClient&) = delete;
  MemoryClient& operator=(const MemoryClient&) = delete;

  SSL* ssl() { return ssl_; }
  // Ciphertext the client wrote for the server.
  std::string takeOutput() {
    std::string bytes;
    char buffer[4096];
    int n;
    while ((n = BIO_read(out_, buffer, sizeof buffer)) > 0) bytes.append(buffer, static_cast<size_t>(n));
    return bytes;
  }
  void receive(const std::string& ciphertext) {
    if (!ciphertext.empty()) BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
  }
  // Plaintext the client can read now.
  std::string readAll() {
    std::string text;
    char buffer[4096];
    int n;
    while ((n = SSL_read(ssl_, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(n));
    return text;
  }

 private:
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
};

void runEstablished(const uint8_t* data, size_t size) {
  const uint8_t flags = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  MemoryClient client((flags & 0x01) != 0, (flags & 0x02) != 0);
  TlsSession session(context());
  std::string server_output;
  for (int round = 0; round < 10 && !(session.established() && SSL_is_init_finished(client.ssl())); ++round) {
    SSL_do_handshake(client.ssl());
    session.receive(client.takeOutput());
    session.takeOutput(server_output);
    client.receive(server_output);
    server_output.clear();
  }
  FUZZ_CHECK(session.established() && !session.failed(), std::string("no handshake: ") + session.failureDetail());

  const bool flip = (flags & 0x08) != 0;
  const size_t flip_at = (static_cast<size_t>(data[0] & 0x7f) << 8 | data[1]) % 4096;
  std::string sent;
  std::string received;
  std::string echoed;
  size_t ciphertext_offset = 0;
  bool flipped = false;
  const std::vector<size_t> pieces = pieceSizes(stream.size(), data[0], 512);
  size_t offset = 0;
  for (size_t i = 0; i < pieces.size() && !session.failed(); ++i) {
    if ((flags & 0x04) != 0 && (flags & 0x01) == 0 && i == pieces.size() / 2) {
      SSL_key_update(client.ssl(), SSL_KEY_UPDATE_REQUESTED);
    }
    const std::string_view piece = stream.substr(offset, pieces[i]);
    offset += pieces[i];
    FUZZ_CHECK(SSL_write(client.ssl(), piece.data(), static_cast<int>(piece.size())) == static_cast<int>(piece.size()),
               "client SSL_write");
    sent.append(piece);
    std::string ciphertext = client.takeOutput();
    if (flip && !flipped && flip_at < ciphertext_offset + ciphertext.size()) {
      ciphertext[flip_at - std::min(flip_at, ciphertext_offset)] ^= 0x20;
      flipped = true;
    }
    ciphertext_offset += ciphertext.size();
    session.receive(ciphertext);
    std::string plain;
    drainInto(session, &plain);
    received += plain;
    if (!plain.empty() && !session.failed()) FUZZ_CHECK(session.send(plain), "server send() while established");
    session.takeOutput(server_output);
    client.receive(server_output);
    server_output.clear();
    echoed += client.readAll();
  }
  FUZZ_CHECK(sent.compare(0, received.size(), received) == 0, "the server read bytes the client did not send");
  // A flipped byte fails the session, or leaves it waiting for a record that grew, or hit a
  // field TLS 1.3 ignores: never altered plaintext (above).
  if (!flipped) {
    FUZZ_CHECK(!session.failed(), std::string("a clean stream failed: ") + session.failureDetail());
    FUZZ_CHECK(received == sent, "the server read " + std::to_string(received.size()) + " of " +
                                     std::to_string(sent.size()) + " bytes");
    FUZZ_CHECK(echoed == sent, "the client read " + std::to_string(echoed.size()) + " echoed bytes of " +
                                   std::to_string(sent.size()));
  }
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  TlsOptions options;
  std::tie(options.certificate, options.key) = makeCertificate("default", "default.test");
  options.sni_certificates.push_back(makeCertificate("sni", "sni.test"));
  std::string error;
  context() = TlsContext::create(options, std::make_shared<TicketKeys>(), &error);
  FUZZ_CHECK(context() != nullptr, "TlsContext::create: " + error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  if (size < 2) return 0;
  if ((data[0] & 0x80) != 0) {
    runEstablished(data, size);
    return 0;
  }
  const uint32_t seed = data[0];
  const size_t max_piece = 1 + 8 * static_cast<size_t>(data[1]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  TlsSession session(context());
  std::string output;
  bool was_failed = false;
  size_t offset = 0;
  for (size_t piece : pieceSizes(stream.size(), seed, max_piece)) {
    session.receive(stream.substr(offset, piece));
    offset += piece;
    drain(session);
    session.takeOutput(output);
    FUZZ_CHECK(!was_failed || session.failed(), "a failed session recovered");
    was_failed = session.failed();
  }
  FUZZ_CHECK(!session.failed() || std::string_view(session.failure()).size() > 0, "a failure without a label");
  if (session.established() && !session.failed()) {
    session.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    session.shutdown();
  } else {
    FUZZ_CHECK(!session.send("x"), "send() before the handshake or after a failure");
  }
  session.takeOutput(output);
  FUZZ_CHECK(!session.hasOutput(), "output left after takeOutput()");
  if (was_failed) {
    char byte;
    FUZZ_CHECK(session.readPlain(&byte, 1) == -1, "a failed session reads again");
  }
  return 0;
}
