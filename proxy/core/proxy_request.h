// One client request on its way through the proxy: routing, admission, the upstream
// exchange with streaming in both directions, retries, and the access log line.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/core/replay_buffer.h"
#include "proxy/core/response_compressor.h"
#include "proxy/core/request_session.h"
#include "proxy/routing/router.h"
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
  // `client`: the client's address for the access log (see clientAddressOf).
  ProxyRequest(Proxy& proxy, ServerExchangePtr exchange, std::string client);
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
  void attempt();
  void admitted();
  void connected(ClientConnectionPtr connection, int status, bool reused);
  // Writes the head for the worker into the loop's scratch buffer and returns it.
  std::string_view upstreamHead() const;
  // True when the worker connection must close after this exchange (an Ambiguous request).
  bool upstreamEndsAfter() const;
  // The attempt never reached a worker (connect refused or timed out): tries again shortly,
  // on the session's route then (it may have moved), within upstream_connect of the first
  // attempt. `cause` labels the retry in stickyproxy_retries_total. False: give up.
  bool retryUnsent(const char* cause);
  // The connection dropped before any response byte. Replays the request once when its body is
  // all kept and it is safe: nothing was sent, or the method is idempotent, or
  // (retry_non_idempotent) the worker's process turns out to have exited. A supervised worker's
  // exit is waited for (briefly) first, so that the replay goes to the session's new worker
  // rather than to the dying process. False: answer 502.
  bool replayAfterLoss(bool request_sent);
  // Polls for the current worker's exit until exit_wait_until_; then replays (on the session's
  // new worker if it exited, on the same one if it lives and the method is idempotent) or
  // answers 502.
  void waitForWorkerExit();
  // Sends the request again from the start (body from replay_), on the session's route now.
  void replay(const char* cause);
  void releaseSlot();
  void detachUpstream(bool reusable);
  // zlib failed mid-response (out of memory): the worker did nothing wrong, but the client's
  // answer cannot be finished, so its connection is cut and the upstream one closed.
  void abortCompression();
  // The proxy answers by itself (502, 503, 504); logs `note`. `cause` labels the error in
  // stickyproxy_proxy_errors_total: a fixed identifier, `note` when empty.
  void respondError(int status, const std::string& message, const std::string& note, std::string_view cause = {});
  void finishLog(int status, const std::string& note);

  Proxy& proxy_;
  std::string client_;
  ServerExchangePtr exchange_;
  uint64_t ticket_;
  std::chrono::steady_clock::time_point started_;

  std::optional<RequestSession> session_;  // read by start()
  std::string set_cookie_;  // Set-Cookie value for the response, or empty
  std::string forwarded_previous_;  // X-Sticky-Previous-Worker of the last attempt sent, for the log
  bool secure_ = false;    // the client reached us over HTTPS

  RouteDecision route_;
  std::shared_ptr<Worker> worker_;  // the worker of the current attempt (kept after a reload removed it)
  bool holds_slot_ = false;
  bool queued_ = false;
  Timer timer_;               // queue timeout, retry delay
  ClientConnectionPtr upstream_;
  std::chrono::steady_clock::time_point first_attempt_;

  std::vector<Bytes> pending_body_;  // body bytes not yet handed to the current upstream
  ReplayBuffer replay_;             // the whole body so far, while it may be replayed
  int replays_ = 0;                 // replays after the request reached a worker (at most one)
  int worker_pid_ = 0;              // the current worker's process when the request was sent
  std::chrono::steady_clock::time_point exit_wait_until_;
  bool request_complete_ = false;
  std::unique_ptr<ResponseCompressor> compressor_;  // set while the response is gzipped here ([compression])
  bool response_started_ = false;
  bool finished_ = false;
  bool announced_ = false;
};

}  // namespace stickyproxy
