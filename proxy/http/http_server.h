// The HTTP/1.1 server side shared by the proxy (client connections), the bundled backend and
// the metrics listener: keep-alive, pipelining answered in order, streaming bodies in both
// directions with backpressure, size limits and timeouts.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "proxy/http/admission.h"
#include "proxy/http/http_message.h"
#include "proxy/http/http_parser.h"
#include "proxy/net/bytes.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/listener.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/recycling_pool.h"
#include "proxy/net/stream.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

class ServerConnection;
class ServerExchange;
using ServerExchangePtr = std::shared_ptr<ServerExchange>;

// A request the server refused by itself.
struct ProtocolError {
  int status = 400;
  std::string reason;   // for the log, e.g. "desync: bare_lf" or "request head too large"
  HeadVerdict verdict;  // the classifier's finding when it caused the refusal
};

struct ServerOptions {
  ParserLimits limits;
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};     // -> 408
  // The longest the client may leave the server waiting for the next piece of a request body;
  // not counted while the application paused the body (ServerExchange::pauseRequestBody).
  std::chrono::milliseconds body_idle_timeout{std::chrono::seconds(60)};  // -> 408
  std::chrono::milliseconds keepalive_timeout{std::chrono::seconds(75)};  // idle -> close
  // The longest a client may take none of its response while the server waits for the write
  // queue to drain (from over `write_high_water` down to a quarter of it: the producer has
  // stopped): then the connection is cut. Checked once per period: a period in which the
  // client's TCP acknowledged any byte starts another.
  std::chrono::milliseconds send_idle_timeout{std::chrono::seconds(60)};
  // After an answer that ends the connection (an early answer to a request whose body is still
  // coming, a refused request), the rest of the request is read and thrown away so that closing
  // does not reset the connection, which would destroy the answer before the client read it.
  // Once the answer is written (and a FIN after it), the server discards until the request's
  // end, the client's EOF, `linger_bytes` discarded, `linger_idle` without input, or
  // `linger_time` in all, whichever comes first, then closes. An answer the client does not
  // read at all for `linger_time` is given up.
  std::chrono::milliseconds linger_time{std::chrono::seconds(10)};
  std::chrono::milliseconds linger_idle{std::chrono::seconds(2)};
  uint64_t linger_bytes = uint64_t{256} << 20;
  size_t write_high_water = 256 * 1024;
  uint32_t max_connections = 10000;
  // Decides each accepted connection's fate (see ConnectionAdmission); unset: every one is served.
  std::function<ConnectionAdmission(const Endpoint& peer)> admit;
  // Called once, when it closes, for each connection admit() answered kAdmitted or kOverLimit;
  // not for the connections a destroyed server closes (the server is gone by then).
  std::function<void(const Endpoint& peer, ConnectionAdmission admission)> release;
  // Seconds in the Retry-After of the 429 that answers a kOverLimit connection.
  uint32_t over_limit_retry_after = 1;
  // Called for each request the server answers by itself (400, 408, 413, 414, 429, 431, 501).
  std::function<void(const Endpoint& peer, const ProtocolError& error)> on_protocol_error;
  // Called for each connection the server cuts without an answer: "over_limit" (ConnectionAdmission::kClose)
  // or "send_idle" (send_idle_timeout).
  std::function<void(const Endpoint& peer, std::string_view reason)> on_connection_cut;
  // Called for each TLS connection that failed: `reason` is TlsSession::failure()'s label,
  // `detail` OpenSSL's text.
  std::function<void(const Endpoint& peer, std::string_view reason, const std::string& detail)> on_tls_error;
};

// What an application attaches to an exchange to follow it. Calls come on the loop thread;
// none comes after onAbort or after the exchange completed.
class ExchangeHandler {
 public:
  virtual ~ExchangeHandler() = default;
  // A piece of the request body; keep the Bytes to keep the memory.
  virtual void onRequestBody(const Bytes& /*data*/) {}
  // The request body is complete.
  virtual void onRequestComplete() {}
  // The response write queue drained after having been over the high-water mark.
  virtual void onWritable() {}
  // The client connection is gone or the request body was invalid; the exchange is over.
  virtual void onAbort(const std::string& /*why*/) {}
};

// One request and its response on a server connection. Safe to call after the connection has
// gone or the exchange completed: it then drops its link to the connection, and calls are
// ignored (check active()).
class ServerExchange : public std::enable_shared_from_this<ServerExchange>, private LoopContext::Deferred {
 public:
  ServerExchange(ServerConnection* connection, RequestHead head, Endpoint peer);
  // Leaves the request target's storage for the next request's (see HeaderList).
  ~ServerExchange() override;

  const RequestHead& request() const { return request_; }
  RequestHead& request() { return request_; }
  const Endpoint& peer() const { return peer_; }
  // True when the request came over TLS.
  bool secure() const { return secure_; }
  std::chrono::steady_clock::time_point startedAt() const { return started_at_; }

  // Attaches the handler that receives body, drain and abort events. The exchange keeps it
  // alive until it completes.
  void setHandler(std::shared_ptr<ExchangeHandler> handler) { handler_ = std::move(handler); }

  // Stops / restarts reading the request body from the client (backpressure). A client that
  // sent "Expect: 100-continue" is told to go on when the body is first wanted. While paused
  // the body idle timeout does not run (the server, not the client, is the one waiting); it is
  // re-armed in full on resume.
  void pauseRequestBody();
  void resumeRequestBody();
  bool requestComplete() const { return request_complete_; }

  // Starts the response. `content_length` set: the body is exactly that long. Unset: the body
  // is sent chunked (HTTP/1.1) or until close (HTTP/1.0). Hop-by-hop fields must already be
  // gone from `head`; the server adds the framing and Connection fields.
  void sendHead(ResponseHead head, std::optional<uint64_t> content_length);
  void sendBody(Bytes data);
  void sendBody(std::string text);
  // Ends the response. When the request body has not been read in full, the rest of it no
  // longer reaches the handler: the connection discards it after the answer and then closes
  // (see ServerOptions::linger_time).
  void finish();
  // A complete response in one call.
  void respond(int status, std::string_view content_type, std::string body, HeaderList extra = {});
  // Closes the client connection now (e.g. the upstream died mid-response).
  void abort();
  // Asks the server to close the connection once this response is done.
  void closeAfterResponse() { close_after_ = true; }

  bool headSent() const { return head_sent_; }
  bool responseComplete() const { return response_complete_; }
  // False once the exchange is over or its connection is gone.
  bool active() const { return connection_ != nullptr && !done_; }
  // Response bytes queued on the client socket and not yet written.
  size_t queuedBytes() const;
  bool overHighWater() const;
  uint64_t bodyBytesSent() const { return body_bytes_sent_; }
  uint64_t requestBodyBytes() const { return request_body_bytes_; }
  int status() const { return status_; }

 private:
  friend class ServerConnection;
  void deliverBody(const Bytes& data);
  void deliverRequestComplete();
  void deliverDrained();
  // The connection is going away; tells the handler unless the exchange completed.
  void detach(const std::string& why);
  void releaseHandler();
  void maybeSendContinue();
  // Writes the response head if it is still held back (see pending_head_).
  void flushHead();
  // Empties pending_head_ and hands its buffer back to the connection.
  void giveBackHeadBuffer();
  void runDeferred() override { flushHead(); }

  ServerConnection* connection_;
  uv_loop_t* loop_;
  RequestHead request_;
  Endpoint peer_;
  std::chrono::steady_clock::time_point started_at_;
  bool secure_;
  std::shared_ptr<ExchangeHandler> handler_;
  bool request_complete_ = false;
  bool head_sent_ = false;
  bool response_complete_ = false;
  bool chunked_ = false;
  bool no_body_ = false;
  bool close_after_ = false;
  bool continue_sent_ = false;
  bool body_paused_ = false;
  bool done_ = false;
  // The serialised response head, held back so that it leaves in one write with the first body
  // bytes or the end of the response; flushed at the latest after this loop iteration. Its
  // buffer is the connection's, lent for the time the head is held.
  std::string pending_head_;
  bool lent_head_buffer_ = false;  // pending_head_ holds the connection's buffer
  int status_ = 0;
  uint64_t body_bytes_sent_ = 0;
  uint64_t request_body_bytes_ = 0;
};

class HttpServer {
 public:
  using RequestCallback = std::function<void(const ServerExchangePtr&)>;

  // `loop` (with a LoopContext) must outlive the server. Loop thread only.
  HttpServer(uv_loop_t* loop, ServerOptions options, RequestCallback on_request);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `endpoint` (Unix sockets get `unix_mode` when non-zero) without accepting yet:
  // connections are refused until startAccepting(). With `tls`, its connections speak TLS under
  // the context of setTlsContext(). Returns 0 or a libuv error code. May be called for several
  // endpoints.
  int bind(const Endpoint& endpoint, int unix_mode = 0, bool tls = false);
  // As bind(), on `fd`, a socket a predecessor process bound for `endpoint` (see
  // proxy/core/handover.h); the server owns `fd` from here on, also on failure.
  int adopt(int fd, const Endpoint& endpoint, bool tls = false);
  // The bound sockets, in bind order, for a successor process to adopt.
  struct BoundSocket {
    Endpoint endpoint;
    bool tls = false;
    int fd = -1;
  };
  std::vector<BoundSocket> boundSockets() const;
  // Accepts on every endpoint bound so far. Returns 0 or the first libuv error code.
  int startAccepting();
  // bind() and start accepting on that endpoint.
  int listen(const Endpoint& endpoint, int unix_mode = 0, bool tls = false);
  // The TLS settings for connections accepted from now on; open ones keep theirs.
  void setTlsContext(std::shared_ptr<TlsContext> context) { tls_context_ = std::move(context); }
  // The first listener's bound address.
  Endpoint boundEndpoint() const;
  // New limits and timeouts apply to requests that start after the call.
  void setOptions(ServerOptions options);
  const ServerOptions& options() const { return options_; }

  // Stops accepting; connections close after their current exchange. An idle keep-alive
  // connection gets up to a second (or `grace`, if shorter) for one more request, answered with
  // "Connection: close", before it is closed. `done` runs when none is left, or after `grace`
  // when the rest are cut.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  // Shutdown for a successor that adopted the listening sockets: they stay open for it (Unix
  // socket files too), and an idle keep-alive connection is not cut (its client may be sending
  // a request right now) but answers its next request with "Connection: close", or closes at its
  // keep-alive timeout. `done` as for shutdown().
  void handOver(std::chrono::milliseconds grace, std::function<void()> done);
  size_t connectionCount() const { return connections_.size(); }
  // Bytes read from and queued to client sockets since the server started, heads included.
  uint64_t bytesReceived() const { return bytes_received_; }
  uint64_t bytesSent() const { return bytes_sent_; }

 private:
  friend class ServerConnection;
  void accept(StreamPtr stream);
  Listener::AcceptCallback acceptor(bool tls);
  void stopServing(std::chrono::milliseconds grace, std::function<void()> done, bool hand_over);
  void connectionClosed(const std::shared_ptr<ServerConnection>& connection);

  uv_loop_t* loop_;
  ServerOptions options_;
  RequestCallback on_request_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<bool> listener_tls_;  // per listeners_ entry
  std::shared_ptr<TlsContext> tls_context_;
  std::unordered_set<std::shared_ptr<ServerConnection>> connections_;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  std::unique_ptr<Timer> shutdown_timer_;
  std::unique_ptr<Timer> idle_drain_timer_;
  // How long a stop spares idle keep-alive connections (see stopServing()).
  static constexpr std::chrono::milliseconds kIdleDrain{1000};
  bool accepting_paused_ = false;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  // Connections hold a weak reference: a close deferred past the server's life must not call it.
  std::shared_ptr<void> alive_ = std::make_shared<int>(0);
};

}  // namespace stickyproxy
