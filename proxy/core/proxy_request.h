// One client request on its way through the proxy: routing, admission, the upstream
// exchange with streaming in both directions, retries, and the access log line.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/core/router.h"
#include "proxy/http/http_client.h"
#include "proxy/http/http_server.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

class Proxy;
class Worker;

// Owned by its ServerExchange (as its handler) until the exchange ends. Holds the upstream
// connection while it forwards; the connection only points back at it while attached.
class ProxyRequest : public ExchangeHandler,
                     public ClientExchangeHandler,
                     public std::enable_shared_from_this<ProxyRequest> {
 public:
  ProxyRequest(Proxy& proxy, ServerExchangePtr exchange);
  ~ProxyRequest() override;

  // Routes the request and starts the first attempt.
  void start();

  // --- ExchangeHandler (client side) ---
  void onRequestBody(const Bytes& data) override;
  void onRequestComplete() override;
  void onWritable() override;
  void onAbort(const std::string& why) override;

  // --- ClientExchangeHandler (upstream side) ---
  void onResponseHead(ResponseHead&& head) override;
  void onResponseBody(const Bytes& data) override;
  void onResponseComplete() override;
  void onFailure(ClientFailure failure, int status) override;
  void onRequestWritable() override;

 private:
  void extractSessionKey();
  void attempt();
  void admitted();
  void connected(ClientConnectionPtr connection, int status, bool reused);
  RequestHead upstreamHead() const;
  // The attempt failed before the upstream saw anything: try again (the route may have moved).
  // `cause` labels the retry in stickyproxy_retries_total.
  bool retryAfterFailure(bool nothing_sent, bool reused_connection, int delay_ms, const char* cause);
  void releaseSlot();
  void detachUpstream(bool reusable);
  // The proxy answers by itself (502, 503, 504); logs `note`. `cause` labels the error in
  // stickyproxy_proxy_errors_total: a fixed identifier, `note` when empty.
  void respondError(int status, const std::string& message, const std::string& note, std::string_view cause = {});
  void finishLog(int status, const std::string& note);

  Proxy& proxy_;
  ServerExchangePtr exchange_;
  uint64_t ticket_;
  std::chrono::steady_clock::time_point started_;

  std::string key_;        // the session key (never logged)
  uint64_t key_hash_ = 0;
  std::string key_short_;  // for the access log
  std::string proxy_key_value_;  // a freshly minted routing key to Set-Cookie
  bool new_key_ = false;   // Set-Cookie the key on the response
  bool secure_ = false;    // the client reached us over HTTPS

  RouteDecision route_;
  Worker* worker_ = nullptr;  // the worker of the current attempt
  bool holds_slot_ = false;
  bool queued_ = false;
  Timer timer_;               // queue timeout, retry delay
  ClientConnectionPtr upstream_;
  int attempts_ = 0;
  std::chrono::steady_clock::time_point first_attempt_;

  std::vector<Bytes> early_body_;  // body bytes that arrived before the upstream was ready
  bool body_sent_ = false;         // some body byte went upstream: no more retries
  bool request_complete_ = false;
  bool response_started_ = false;
  bool finished_ = false;
  bool announced_ = false;
};

}  // namespace stickyproxy
