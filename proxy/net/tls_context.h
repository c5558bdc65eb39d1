// Server-side TLS settings built once from files: certificates (several, chosen by SNI),
// protocol versions, ciphers, ALPN http/1.1 and session tickets under keys that rotate.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace stickyproxy {

struct TlsOptions {
  std::string certificate;  // PEM chain, leaf first
  std::string key;          // PEM private key of `certificate`
  // Further (chain, key) pairs; a client naming one of a certificate's DNS names gets it.
  std::vector<std::pair<std::string, std::string>> sni_certificates;
  bool tls13_only = false;  // else TLS 1.2 and 1.3
  std::string ciphers;       // TLS 1.2, OpenSSL syntax
  std::string ciphersuites;  // TLS 1.3
  bool session_tickets = true;
};

// The keys that encrypt session tickets: the current one issues them, the previous one still
// accepts (and renews) tickets issued before the last rotate(). Shared by every TlsContext of
// a process, so that tickets survive a certificate reload.
class TicketKeys {
 public:
  TicketKeys();  // starts with a fresh random key
  void rotate();

  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
  };
  const Key& current() const { return keys_[0]; }
  // The key called `name`, and whether it is the current one; nullptr when unknown.
  const Key* find(const unsigned char* name, bool* is_current) const;

 private:
  static Key fresh();
  std::array<Key, 2> keys_;  // [0] current, [1] previous
  bool have_previous_ = false;
};

// Immutable once made. Each TLS connection holds a reference, so a reload can replace the
// context while older connections go on with theirs.
class TlsContext {
 public:
  // Loads every certificate and key. Returns nullptr and sets `*error` (naming the file) when
  // one is unreadable, a key does not match its certificate, or a setting is refused.
  static std::shared_ptr<TlsContext> create(const TlsOptions& options, std::shared_ptr<TicketKeys> keys,
                                            std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // The context new connections start with; SNI may switch them to another certificate's.
  SSL_CTX* context() const { return contexts_.front(); }

 private:
  TlsContext() = default;
  bool addCertificate(const TlsOptions& options, const std::string& chain, const std::string& key, std::string* error);
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                         int encrypt);

  std::vector<SSL_CTX*> contexts_;  // one per certificate, the default first
  std::shared_ptr<TicketKeys> keys_;
};

}  // namespace stickyproxy
