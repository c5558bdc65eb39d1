#include "proxy/core/tls_termination.h"

#include <chrono>

namespace stickyproxy {

TlsTermination::TlsTermination(uv_loop_t* loop) : rotation_timer_(loop) {
  rotation_timer_.unref();  // housekeeping: never what keeps a stopping proxy alive
}

TlsOptions TlsTermination::optionsOf(const TlsConfig& config) {
  TlsOptions options;
  options.certificate = config.certificate;
  options.key = config.key;
  options.sni_certificates = config.sni_certificates;
  options.tls13_only = config.min_version == "TLSv1.3";
  options.ciphers = config.ciphers;
  options.ciphersuites = config.ciphersuites;
  options.session_tickets = config.session_tickets;
  return options;
}

bool TlsTermination::load(const TlsConfig& config, std::string* error) {
  std::shared_ptr<TlsContext> next = TlsContext::create(optionsOf(config), ticket_keys_, error);
  if (!next) return false;
  context_ = std::move(next);
  scheduleRotation(config);
  return true;
}

bool TlsTermination::check(const TlsConfig& config, std::string* error) {
  return TlsContext::create(optionsOf(config), std::make_shared<TicketKeys>(), error) != nullptr;
}

void TlsTermination::scheduleRotation(const TlsConfig& config) {
  if (!config.session_tickets) {
    rotation_timer_.stop();
    return;
  }
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(config.ticket_key_rotation);
  if (period.count() <= 0) period = std::chrono::hours(12);
  rotation_timer_.startRepeating(period, [this] { ticket_keys_->rotate(); });
}

}  // namespace stickyproxy
