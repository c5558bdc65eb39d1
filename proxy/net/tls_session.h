// One server-side TLS connection as a pure byte transform (OpenSSL over memory BIOs): the
// socket's ciphertext goes in, plaintext comes out, and what must go back to the peer
// (handshake, tickets, alerts, encrypted data) is collected for the caller to write.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "proxy/net/tls_context.h"

namespace stickyproxy {

class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Takes ciphertext read from the socket and advances the handshake.
  void receive(std::string_view ciphertext);
  // Decrypts into `buffer`: returns the bytes written, 0 when more ciphertext is needed (or the
  // peer sent close_notify: see peerClosed()), -1 once failed().
  long readPlain(char* buffer, size_t capacity);
  // Encrypts `plain`; false once failed() or before established().
  bool send(std::string_view plain);
  // Queues a close_notify alert.
  void shutdown();
  // Moves the bytes waiting for the peer into `out` (appending).
  void takeOutput(std::string& out);
  bool hasOutput() const;

  bool established() const { return established_; }
  bool failed() const { return failed_; }
  bool peerClosed() const { return peer_closed_; }
  // Why the session failed, as a fixed label for metrics: "plain_http", "protocol_version",
  // "no_shared_cipher", "handshake_failed" or "bad_record".
  const char* failure() const { return failure_; }
  // The OpenSSL reason text of the failure, for logs.
  const std::string& failureDetail() const { return failure_detail_; }
  // The negotiated protocol ("TLSv1.3"), for logs and tests.
  const char* version() const { return SSL_get_version(ssl_); }

 private:
  void advanceHandshake();
  void fail(int ssl_error);

  std::shared_ptr<TlsContext> context_;  // keeps the SNI callback's object alive
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  BIO* out_ = nullptr;  // ciphertext to the peer (owned by ssl_)
  bool established_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  const char* failure_ = "";
  std::string failure_detail_;
};

}  // namespace stickyproxy
