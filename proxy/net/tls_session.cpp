#include "proxy/net/tls_session.h"

#include <openssl/err.h>

#include <climits>

namespace stickyproxy {

TlsSession::TlsSession(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->context());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    failed_ = true;
    failure_ = "handshake_failed";
    failure_detail_ = "out of memory";
    ERR_clear_error();
    return;
  }
  BIO_set_mem_eof_return(in_, -1);  // an empty input BIO means "want more", not EOF
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::receive(std::string_view ciphertext) {
  if (failed_ || ciphertext.empty()) return;
  BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
  if (!established_) advanceHandshake();
}

void TlsSession::advanceHandshake() {
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    established_ = true;
    return;
  }
  int error = SSL_get_error(ssl_, result);
  if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) fail(error);
}

long TlsSession::readPlain(char* buffer, size_t capacity) {
  if (failed_) return -1;
  if (!established_ || peer_closed_) return 0;
  ERR_clear_error();
  int result = SSL_read(ssl_, buffer, static_cast<int>(std::min<size_t>(capacity, INT_MAX)));
  if (result > 0) return result;
  int error = SSL_get_error(ssl_, result);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return 0;
  if (error == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    return 0;
  }
  fail(error);
  return -1;
}

bool TlsSession::send(std::string_view plain) {
  if (failed_ || !established_) return false;
  ERR_clear_error();
  while (!plain.empty()) {
    int result = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), INT_MAX)));
    if (result <= 0) {
      fail(SSL_get_error(ssl_, result));
      return false;
    }
    plain.remove_prefix(static_cast<size_t>(result));
  }
  return true;
}

void TlsSession::shutdown() {
  if (failed_ || !established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void TlsSession::takeOutput(std::string& out) {
  if (out_ == nullptr) return;
  char* data = nullptr;
  long length = BIO_get_mem_data(out_, &data);
  if (length <= 0) return;
  out.append(data, static_cast<size_t>(length));
  (void)BIO_reset(out_);
}

bool TlsSession::hasOutput() const { return out_ != nullptr && BIO_ctrl_pending(out_) > 0; }

void TlsSession::fail(int ssl_error) {
  failed_ = true;
  unsigned long code = ERR_peek_last_error();
  int reason = ERR_GET_REASON(code);
  if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) {
    failure_ = "plain_http";
  } else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_WRONG_VERSION_NUMBER ||
             reason == SSL_R_VERSION_TOO_LOW) {
    failure_ = "protocol_version";
  } else if (reason == SSL_R_NO_SHARED_CIPHER) {
    failure_ = "no_shared_cipher";
  } else {
    failure_ = established_ ? "bad_record" : "handshake_failed";
  }
  const char* text = code != 0 ? ERR_reason_error_string(code) : nullptr;
  failure_detail_ = text != nullptr ? text : "SSL error " + std::to_string(ssl_error);
  ERR_clear_error();
}

}  // namespace stickyproxy
