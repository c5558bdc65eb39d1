// The proxy's TLS side as configured by [tls]: the current certificates (replaced by a reload
// that can load them, kept otherwise) and the session-ticket keys, rotated on a timer.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "proxy/config/config.h"
#include "proxy/net/timer.h"
#include "proxy/net/tls_context.h"

namespace stickyproxy {

class TlsTermination {
 public:
  // `loop` must outlive this. Nothing is loaded until load().
  explicit TlsTermination(uv_loop_t* loop);
  TlsTermination(const TlsTermination&) = delete;
  TlsTermination& operator=(const TlsTermination&) = delete;

  // Loads `config`'s certificates and keys. On failure returns false, sets `*error` and keeps
  // the context it had (connections go on being accepted with the old certificates).
  bool load(const TlsConfig& config, std::string* error);
  std::shared_ptr<TlsContext> context() const { return context_; }

  // Loads `config` without keeping it: the `-t` check.
  static bool check(const TlsConfig& config, std::string* error);

 private:
  static TlsOptions optionsOf(const TlsConfig& config);
  void scheduleRotation(const TlsConfig& config);

  std::shared_ptr<TicketKeys> ticket_keys_ = std::make_shared<TicketKeys>();
  std::shared_ptr<TlsContext> context_;
  Timer rotation_timer_;
};

}  // namespace stickyproxy
