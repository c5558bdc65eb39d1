// The HTTP/1.1 client side: one connection to an upstream server, reusable for sequential
// requests (keep-alive). Used by the proxy's upstream pool and by its health checks.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>

#include "proxy/http/http_message.h"
#include "proxy/http/http_parser.h"
#include "proxy/net/bytes.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/stream.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

class ClientConnection;
using ClientConnectionPtr = std::shared_ptr<ClientConnection>;

enum class ClientFailure {
  kConnectFailed,    // refused, no such socket, unreachable: nothing was sent
  kConnectTimeout,   // nothing was sent
  kConnectionLost,   // reset or closed by the server during the exchange
  kResponseTimeout,  // the server kept us waiting longer than the response timeout
  kBadResponse,      // the server's response could not be parsed
};
const char* clientFailureName(ClientFailure failure);

// Follows one request on a ClientConnection. No call comes after onResponseComplete or
// onFailure. Callbacks may release or close the connection.
class ClientExchangeHandler {
 public:
  virtual ~ClientExchangeHandler() = default;
  // A final (non-1xx) response head. Interim 1xx responses are skipped.
  virtual void onResponseHead(ResponseHead&& head) = 0;
  virtual void onResponseBody(const Bytes& data) = 0;
  virtual void onResponseComplete() = 0;
  // `status`: the libuv error code behind it, when there is one.
  virtual void onFailure(ClientFailure failure, int status) = 0;
  // The request write queue drained after having been over the high-water mark.
  virtual void onRequestWritable() {}
};

// Not thread-safe: loop thread only. Owned by shared pointers (the pool, a request, the connect
// callback while connecting); dropping the last one closes the socket.
class ClientConnection : public std::enable_shared_from_this<ClientConnection>,
                         public Stream::Handler,
                         public HttpParser::Handler {
 public:
  static ClientConnectionPtr create(uv_loop_t* loop, Endpoint endpoint, ParserLimits limits = {});

  // Connects within `timeout`; `done` gets 0, or a libuv error code (UV_ETIMEDOUT on timeout).
  void connect(std::chrono::milliseconds timeout, std::function<void(int status)> done);

  // Sends `head` (hop-by-hop fields already handled; framing fields are added here from
  // head.framing) and starts following the response.
  //
  // `response_timeout` (0: none) bounds only time spent waiting for the server, never time the
  // server waits for us. It runs, re-armed in full at each sign of progress from the server,
  //  - once the request's end has been queued (endBody(), or startRequest() for a request
  //    without a body), until the response completes: the wait for the head and each gap in
  //    the body;
  //  - while the request body is still coming, only as long as the server does not take what
  //    we sent (the write queue is over its high-water mark) - a server that answers early and
  //    then waits for the rest of our body is waiting on us, however slow our sender is;
  // and it is stopped while pauseResponse() is in effect (our reader is slow, not the server),
  // to be re-armed by resumeResponse().
  void startRequest(const RequestHead& head, ClientExchangeHandler* handler,
                    std::chrono::milliseconds response_timeout);
  // The same for a head already written out (`wire`, framing fields included): `framing` says
  // how its body is sent, `head_method` that it asks HEAD (its response has no body).
  // `wire` is copied only as far as the socket does not take it at once.
  void startWrittenRequest(std::string_view wire, bool head_method, BodyFraming framing, ClientExchangeHandler* handler,
                           std::chrono::milliseconds response_timeout);
  // Sends a piece of the request body, chunk-encoded when the request is chunked.
  void sendBody(Bytes data);
  // Ends the request body.
  void endBody();
  bool overHighWater() const { return stream_->overHighWater(); }
  void setWriteHighWater(size_t bytes) { stream_->setWriteHighWater(bytes); }

  // Backpressure for the response direction.
  void pauseResponse();
  void resumeResponse();

  // Stops delivering events to the current handler (it is going away). The connection is
  // then not reusable unless the exchange had completed.
  void detachHandler();
  // True when idle, healthy and allowed by the server to carry another request.
  bool reusable() const;
  // True once any request byte was handed to the socket in the current exchange.
  bool requestSent() const { return request_sent_; }
  bool responseStarted() const { return response_started_; }
  bool reused() const { return exchanges_ > 1; }
  bool closed() const { return closed_; }
  void close();
  const Endpoint& endpoint() const { return endpoint_; }
  // While idle in a pool: called once if the server closes the connection.
  void setIdleClosedCallback(std::function<void()> callback) { on_idle_closed_ = std::move(callback); }
  std::chrono::steady_clock::time_point idleSince() const { return idle_since_; }

  // --- Stream::Handler / HttpParser::Handler (internal) ---
  void onStreamRead(const Bytes& data) override;
  void onStreamEnd(int status) override;
  void onStreamDrained() override;
  bool onResponseHead(ResponseHead&& head) override;
  void onBody(const Bytes& data) override;
  void onMessageComplete() override;

  ClientConnection(uv_loop_t* loop, Endpoint endpoint, ParserLimits limits);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

 private:
  void fail(ClientFailure failure, int status);
  // True while the exchange waits on the server (see startRequest).
  bool waitingOnServer() const;
  // Re-arms the response timer in full when waiting on the server, stops it otherwise.
  void updateResponseTimer();

  Endpoint endpoint_;
  StreamPtr stream_;
  HttpParser parser_;
  Timer timer_;
  ClientExchangeHandler* handler_ = nullptr;
  std::chrono::milliseconds response_timeout_{0};
  std::function<void()> on_idle_closed_;
  std::chrono::steady_clock::time_point idle_since_;
  bool connected_ = false;
  bool in_exchange_ = false;
  bool request_chunked_ = false;
  bool request_sent_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool head_request_ = false;
  bool server_keep_alive_ = true;
  bool interim_ = false;
  bool broken_ = false;
  bool closed_ = false;
  bool response_paused_ = false;
  uint64_t exchanges_ = 0;
};

}  // namespace stickyproxy
