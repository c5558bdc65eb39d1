// Fuzz target "tls_handshake": bytes from a client, fed to the proxy's server-side TLS
// (proxy/net/tls_session.h) over one TlsContext (proxy/net/tls_context.h) with a default and an
// SNI certificate, as Stream does with what the socket reads.
//
// Input: byte 0 seeds the piece sizes, byte 1 picks the largest piece (1 + 8 * byte 1); the rest
// is the ciphertext stream of the connection. The seeds (tests/fuzz/make_tls_seeds.py) are
// ClientHellos of TLS 1.2 and 1.3, with and without SNI.
//
// Invariants: no crash, leak or undefined behaviour, also when ciphertext keeps coming after a
// failure or a close_notify; a failed session stays failed, hands out no more plaintext
// (readPlain() is -1) and refuses to send; send() works only once established.
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

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
