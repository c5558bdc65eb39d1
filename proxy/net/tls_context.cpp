#include "proxy/net/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace stickyproxy {

namespace {

// The newest OpenSSL error as text ("no start line"), or `fallback`; clears the queue.
std::string lastError(const char* fallback) {
  unsigned long code = ERR_peek_last_error();
  std::string text = code != 0 && ERR_reason_error_string(code) != nullptr ? ERR_reason_error_string(code) : fallback;
  ERR_clear_error();
  return text;
}

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int selectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
               unsigned int in_length, void* /*arg*/) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_length, kAlpnHttp11, sizeof kAlpnHttp11, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // a client offering only h2 still gets HTTP/1.1, unannounced
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TicketKeys::TicketKeys() : keys_{fresh(), Key{}} {}

TicketKeys::Key TicketKeys::fresh() {
  Key key;
  RAND_bytes(key.name.data(), static_cast<int>(key.name.size()));
  RAND_bytes(key.aes.data(), static_cast<int>(key.aes.size()));
  RAND_bytes(key.hmac.data(), static_cast<int>(key.hmac.size()));
  return key;
}

void TicketKeys::rotate() {
  keys_[1] = keys_[0];
  keys_[0] = fresh();
  have_previous_ = true;
}

const TicketKeys::Key* TicketKeys::find(const unsigned char* name, bool* is_current) const {
  for (size_t i = 0; i < (have_previous_ ? 2u : 1u); ++i) {
    if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) == 0) {
      *is_current = i == 0;
      return &keys_[i];
    }
  }
  return nullptr;
}

std::shared_ptr<TlsContext> TlsContext::create(const TlsOptions& options, std::shared_ptr<TicketKeys> keys,
                                               std::string* error) {
  std::shared_ptr<TlsContext> made(new TlsContext());
  made->keys_ = std::move(keys);
  if (!made->addCertificate(options, options.certificate, options.key, error)) return nullptr;
  for (const auto& [chain, key] : options.sni_certificates) {
    if (!made->addCertificate(options, chain, key, error)) return nullptr;
  }
  if (made->contexts_.size() > 1) {
    // The macros behind these two calls use C casts; these are their expansions.
    SSL_CTX_callback_ctrl(made->context(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(&TlsContext::onServerName));
    SSL_CTX_ctrl(made->context(), SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, made.get());
  }
  return made;
}

TlsContext::~TlsContext() {
  for (SSL_CTX* context : contexts_) SSL_CTX_free(context);
}

bool TlsContext::addCertificate(const TlsOptions& options, const std::string& chain, const std::string& key,
                                std::string* error) {
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) {
    *error = "cannot create a TLS context: " + lastError("out of memory");
    return false;
  }
  contexts_.push_back(context);  // freed with the rest from here on
  SSL_CTX_set_min_proto_version(context, options.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                   (options.session_tickets ? 0 : SSL_OP_NO_TICKET));
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
  if (!options.ciphers.empty() && SSL_CTX_set_cipher_list(context, options.ciphers.c_str()) != 1) {
    *error = "ciphers \"" + options.ciphers + "\": " + lastError("no usable cipher");
    return false;
  }
  if (!options.ciphersuites.empty() && SSL_CTX_set_ciphersuites(context, options.ciphersuites.c_str()) != 1) {
    *error = "ciphersuites \"" + options.ciphersuites + "\": " + lastError("no usable suite");
    return false;
  }
  if (SSL_CTX_set1_groups_list(context, "X25519:P-256:P-384") != 1) ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(context, chain.c_str()) != 1) {
    *error = "certificate " + chain + ": " + lastError("cannot be read");
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(context, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    *error = mismatch ? "key " + key + " does not match certificate " + chain : "key " + key + ": " + lastError("cannot be read");
    ERR_clear_error();
    return false;
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    *error = "key " + key + " does not match certificate " + chain;
    ERR_clear_error();
    return false;
  }
  static const unsigned char kSessionContext[] = "stickyproxy";
  SSL_CTX_set_session_id_context(context, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_alpn_select_cb(context, &selectAlpn, nullptr);
  SSL_CTX_set_ex_data(context, 0, this);  // SSL_CTX_set_app_data, without its C cast
  if (options.session_tickets && keys_) SSL_CTX_set_tlsext_ticket_key_evp_cb(context, &TlsContext::onTicketKey);
  return true;
}

int TlsContext::onServerName(SSL* ssl, int* /*alert*/, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  size_t length = std::strlen(name);
  for (SSL_CTX* context : self->contexts_) {
    X509* certificate = SSL_CTX_get0_certificate(context);
    if (certificate != nullptr && X509_check_host(certificate, name, length, 0, nullptr) == 1) {
      if (context != self->context()) SSL_set_SSL_CTX(ssl, context);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_OK;  // the default certificate
}

int TlsContext::onTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                            EVP_MAC_CTX* mac, int encrypt) {
  auto* self = static_cast<TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0));
  if (self == nullptr || !self->keys_) return -1;
  const TicketKeys::Key* key = nullptr;
  bool current = true;
  if (encrypt != 0) {
    key = &self->keys_->current();
    std::memcpy(name, key->name.data(), key->name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
  } else {
    key = self->keys_->find(name, &current);
    if (key == nullptr) return 0;  // unknown or expired key: a full handshake
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()),
                                        key->hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  int ok = encrypt != 0 ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
                        : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv);
  if (ok != 1) return -1;
  return current ? 1 : 2;  // 2: accepted under the previous key, renew the ticket
}

}  // namespace stickyproxy
