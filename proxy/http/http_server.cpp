#include "proxy/http/http_server.h"

#include <algorithm>

#include "proxy/net/loop_context.h"

namespace stickyproxy {

// One client connection. Reads requests one at a time: while an exchange is open the socket is
// not read beyond its body, so pipelined requests wait (in order) in `pending_`.
class ServerConnection : public std::enable_shared_from_this<ServerConnection>,
                         public Stream::Handler,
                         public HttpParser::Handler {
 public:
  ServerConnection(HttpServer* server, StreamPtr stream, Endpoint peer, ConnectionAdmission admission)
      : server_(server),
        stream_(std::move(stream)),
        parser_(HttpParser::Kind::kRequest, this, server->options_.limits),
        timer_(server->loop_),
        send_timer_(server->loop_),
        peer_(std::move(peer)),
        admission_(admission),
        server_alive_(server->alive_) {}

  const Endpoint& peer() const { return peer_; }
  ConnectionAdmission admission() const { return admission_; }

  void start() {
    stream_->setHandler(this);
    stream_->setWriteHighWater(server_->options_.write_high_water);
    stream_->startReading();
    armIdleTimer();
  }

  // Closes at once. Safe to call twice.
  void close(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    timer_.stop();
    send_timer_.stop();
    stream_->close();
    if (exchange_) {
      ServerExchangePtr exchange = std::move(exchange_);
      exchange->detach(why);
    }
    auto self = shared_from_this();
    // The server may be destroyed before this runs (its destructor closes every connection).
    LoopContext::of(server_->loop_).defer([self, server_alive = server_alive_] {
      if (!server_alive.expired()) self->server_->connectionClosed(self);
    });
  }

  // Server shutdown: close now when idle, otherwise after the current exchange (and after the
  // answer that ends it has gone out).
  // With `cut_idle` false an idle connection stays open for its client's next request (answered
  // with "Connection: close") or until its keep-alive timeout.
  void closeWhenIdle(bool cut_idle) {
    closing_ = true;
    cut_idle_ = cut_idle;
    if (cut_idle && !exchange_ && !parser_.inMessage() && !lingering_) close("server shutting down");
  }

  bool idle() const { return !exchange_ && !parser_.inMessage(); }
  // The server stops: responses from now on say "Connection: close".
  bool closing() const { return closing_; }
  Stream& stream() { return *stream_; }
  const ServerOptions& options() const { return server_->options_; }

  // --- called by ServerExchange ---
  // The application holds the request body back: the client is not the one keeping us waiting,
  // so the body idle timer stops until resumeReading() re-arms it.
  void pauseReading() {
    reading_wanted_ = false;
    if (closed_ || lingering_) return;
    stream_->stopReading();
    if (exchange_ && parser_.inMessage()) timer_.stop();
  }
  void resumeReading() {
    reading_wanted_ = true;
    if (closed_ || lingering_) return;
    if (pending_.empty()) stream_->startReading();
    if (exchange_ && parser_.inMessage()) armBodyTimer();
  }
  void write(Bytes data) {
    server_->bytes_sent_ += data.size;
    stream_->write(std::move(data));
    watchSending();
  }
  void write(std::string text) {
    server_->bytes_sent_ += text.size();
    stream_->write(std::move(text));
    watchSending();
  }
  void write(std::vector<Bytes> pieces) {
    for (const Bytes& piece : pieces) server_->bytes_sent_ += piece.size;
    stream_->write(std::move(pieces));
    watchSending();
  }

  void writeCopied(std::string_view prefix, Bytes body, std::string_view suffix) {
    server_->bytes_sent_ += prefix.size() + body.size + suffix.size();
    stream_->writeCopied(prefix, std::move(body), suffix);
    watchSending();
  }
  // The buffer the connection's exchanges write their response heads into, kept between
  // exchanges for its capacity: swapped into the exchange's (empty) string and back.
  void swapHeadBuffer(std::string& text) { head_buffer_.swap(text); }

  void exchangeDone(ServerExchange* exchange) {
    if (!exchange_ || exchange_.get() != exchange) return;
    ServerExchangePtr finished = std::move(exchange_);
    // A response whose head promised keep-alive before the server began to stop leaves the
    // connection open when the idle ones are spared (ServerOptions: hand-over): its client may
    // send its next request at once, and that one is answered with "Connection: close".
    bool keep_alive = finished->request().keep_alive && !finished->close_after_ && !(closing_ && cut_idle_);
    if (!keep_alive) {
      lingerThenClose();
      return;
    }
    parser_.setLimits(server_->options_.limits);
    reading_wanted_ = true;
    armIdleTimer();
    if (!pending_.empty()) {
      // Parse the next pipelined request after the current callback stack has unwound.
      auto self = shared_from_this();
      LoopContext::of(server_->loop_).defer([self] { self->processPending(); });
    } else {
      stream_->startReading();
    }
  }

  // --- Stream::Handler ---
  void onStreamRead(const Bytes& data) override {
    auto keep = shared_from_this();
    server_->bytes_received_ += data.size;
    if (lingering_) {
      discard(data);
      return;
    }
    consume(data);
  }

  void onStreamEnd(int status) override {
    auto keep = shared_from_this();
    if (lingering_) {
      if (status != UV_EOF) {
        close("client connection error after the response: " + uvErrorText(status));
        return;
      }
      // Nothing more comes in; the answer may still be on its way out.
      peer_closed_ = true;
      if (answer_written_) close("closed after response");
      return;
    }
    if (exchange_ && exchange_->requestComplete() && status == UV_EOF) {
      // Half-close after a complete request: the client may still read the response.
      peer_closed_ = true;
      exchange_->request().keep_alive = false;
      return;
    }
    const TlsSession* tls = stream_->tls();
    if (tls != nullptr && tls->failed()) {
      if (server_->options_.on_tls_error) server_->options_.on_tls_error(peer_, tls->failure(), tls->failureDetail());
      close(std::string(tls->established() ? "TLS error: " : "TLS handshake failed: ") + tls->failureDetail());
      return;
    }
    close(status == UV_EOF ? "client closed the connection" : "client connection error: " + uvErrorText(status));
  }

  void onStreamDrained() override {
    auto keep = shared_from_this();
    send_timer_.stop();
    if (exchange_) exchange_->deliverDrained();
  }

  // --- HttpParser::Handler ---
  void onRequestHead(RequestHead&& head) override {
    timer_.stop();
    if (admission_ == ConnectionAdmission::kOverLimit) {
      HeaderList extra;
      extra.add("Retry-After", std::to_string(server_->options_.over_limit_retry_after));
      rejectRequest(429, "over the per-client connection limit", {}, std::move(extra));
      return;
    }
    // From the thread's recycled blocks: a request on a kept-alive connection allocates nothing.
    exchange_ = std::allocate_shared<ServerExchange>(RecyclingAllocator<ServerExchange>(), this, std::move(head), peer_);
    ServerExchangePtr exchange = exchange_;
    if (exchange->request().framing.hasBody()) armBodyTimer();
    server_->on_request_(exchange);
    if (exchange->active() && !exchange->requestComplete()) exchange->maybeSendContinue();
  }

  void onBody(const Bytes& data) override {
    if (exchange_) {
      armBodyTimer();
      exchange_->deliverBody(data);
    }
  }

  void onMessageComplete() override {
    if (lingering_) {
      request_ended_ = true;  // the discarded body is complete; discard() closes
      return;
    }
    if (!exchange_) return;
    timer_.stop();
    exchange_->deliverRequestComplete();
  }

 private:
  void consume(Bytes data) {
    if (!pending_.empty()) {
      // Should not happen (we stop reading while input waits), but never lose bytes.
      pending_.push_back(std::move(data));
      stream_->stopReading();
      return;
    }
    if (!parser_.inMessage() && !exchange_) armHeaderTimer();
    while (!data.empty() && !closed_) {
      size_t consumed = parser_.feed(data);
      if (closed_) return;
      if (lingering_) {
        // The handler answered (ending the exchange) while its body was being parsed: the
        // parser has seen this buffer up to the request's end, the rest is discarded.
        discard(data.suffix(consumed));
        return;
      }
      if (parser_.error() != ParseError::kNone) {
        rejectRequest(statusForParseError(parser_.error()), parser_.errorReason(), parser_.refusal());
        return;
      }
      data = data.suffix(consumed);
      if (data.empty() || closed_) break;
      // A message completed inside this buffer. If its exchange is still open, the rest waits.
      if (exchange_) {
        pending_.push_back(std::move(data));
        stream_->stopReading();
        return;
      }
      armHeaderTimer();
    }
    if (!closed_ && !reading_wanted_) stream_->stopReading();
  }

  void processPending() {
    if (closed_ || exchange_ || lingering_) return;
    std::vector<Bytes> waiting;
    waiting.swap(pending_);
    for (size_t i = 0; i < waiting.size(); ++i) {
      if (closed_) return;
      if (exchange_ || !pending_.empty()) {
        pending_.insert(pending_.end(), waiting.begin() + static_cast<std::ptrdiff_t>(i), waiting.end());
        return;
      }
      consume(waiting[i]);
    }
    if (!closed_ && pending_.empty() && !exchange_ && reading_wanted_) stream_->startReading();
    if (peer_closed_ && !exchange_) close("client closed the connection");
  }

  // Answers a request the server refused, then closes (after a parse error the stream position
  // is unknown).
  void rejectRequest(int status, const std::string& reason, HeadVerdict verdict = {}, HeaderList extra = {}) {
    if (server_->options_.on_protocol_error) {
      server_->options_.on_protocol_error(peer_, ProtocolError{status, reason, verdict});
    }
    if (exchange_ && exchange_->headSent()) {
      close("bad request body: " + reason);
      return;
    }
    if (exchange_) {
      ServerExchangePtr exchange = std::move(exchange_);
      exchange->detach("bad request: " + reason);
    }
    ResponseHead head;
    head.status = status;
    head.headers = std::move(extra);
    std::string body = std::to_string(status) + " " + std::string(reasonPhrase(status)) + "\n";
    head.headers.add("Content-Type", "text/plain; charset=utf-8");
    head.headers.add("Content-Length", std::to_string(body.size()));
    head.headers.add("Connection", "close");
    write(serializeResponseHead(head) + body);
    lingerThenClose();
  }

  // Ends the connection after an answer that closes it, without a reset. The answer goes out in
  // full with a FIN after it, and what the client still sends is read and dropped meanwhile:
  // bytes left unread at close() make the kernel send a reset, and a client that gets one while
  // uploading usually reports the reset instead of reading the answer (nginx's lingering close).
  // Closes when the request's end has been read after the answer went out, or at the bounds of
  // ServerOptions::linger_*.
  void lingerThenClose() {
    if (closed_ || lingering_) return;
    lingering_ = true;
    send_timer_.stop();  // the linger bounds take over
    pending_.clear();  // a pipelined request after a complete one: never answered
    // After a parse error the request's end cannot be found: discard until the client stops.
    request_ended_ = !parser_.inMessage() && parser_.error() == ParseError::kNone;
    linger_deadline_ = std::chrono::steady_clock::now() + server_->options_.linger_time;
    unsent_at_check_ = stream_->unsentBytes();
    auto weak = weak_from_this();
    stream_->shutdownWrite([weak](int status) {
      if (auto self = weak.lock()) self->onAnswerWritten(status);
    });
    stream_->startReading();
    armLingerTimer();
  }

  void onAnswerWritten(int status) {
    if (closed_) return;
    if (status != 0) {
      close("response not delivered: " + uvErrorText(status));
      return;
    }
    answer_written_ = true;
    linger_deadline_ = std::chrono::steady_clock::now() + server_->options_.linger_time;
    if (request_ended_ || peer_closed_) {
      close("closed after response");
      return;
    }
    armLingerTimer();
  }

  // Input that arrives after the answer that ends the connection.
  void discard(const Bytes& data) {
    discarded_ += data.size;
    if (!request_ended_ && parser_.inMessage() && parser_.error() == ParseError::kNone) {
      // Only to find the request's end: the exchange is gone, so the body reaches nobody.
      parser_.feed(data);
    }
    if (closed_ || !answer_written_) return;
    if (request_ended_) {
      close("request body discarded after the response");
    } else if (discarded_ > server_->options_.linger_bytes) {
      close("discarded the most request bytes allowed after the response");
    } else {
      armLingerTimer();  // input restarts the idle bound
    }
  }

  // While the answer is going out, waits up to linger_time for each bit of progress; after it,
  // waits up to linger_idle for input, within linger_time in all.
  void armLingerTimer() {
    using std::chrono::milliseconds;
    auto left = std::chrono::duration_cast<milliseconds>(linger_deadline_ - std::chrono::steady_clock::now());
    milliseconds wait = std::max(milliseconds(0), left);
    if (answer_written_) wait = std::min(wait, server_->options_.linger_idle);
    // [this] alone (no allocation): a member timer never fires after its owner is gone.
    timer_.start(wait, [this] { shared_from_this()->onLingerTimeout(); });
  }

  void onLingerTimeout() {
    if (closed_) return;
    auto now = std::chrono::steady_clock::now();
    if (!answer_written_) {
      size_t unsent = stream_->unsentBytes();
      if (unsent < unsent_at_check_) {
        // The client reads its answer, slowly: give it another round.
        unsent_at_check_ = unsent;
        linger_deadline_ = now + server_->options_.linger_time;
        armLingerTimer();
        return;
      }
      close("client did not read the response");
      return;
    }
    close(now >= linger_deadline_ ? "linger time over" : "client idle after the response");
  }

  // Arms the send idle bound when the response has gone over the high-water mark; it runs
  // until the queue drains (to a quarter of the mark: the producer waits that long).
  void watchSending() {
    if (closed_ || lingering_ || send_timer_.armed() || !stream_->awaitingDrain()) return;
    delivered_at_check_ = stream_->deliveredBytes();
    send_timer_.start(server_->options_.send_idle_timeout, [this] { shared_from_this()->onSendIdle(); });
  }

  void onSendIdle() {
    if (closed_ || lingering_ || !stream_->awaitingDrain()) return;
    if (stream_->deliveredBytes() != delivered_at_check_) {
      watchSending();  // the client reads, slowly: another round
      return;
    }
    if (server_->options_.on_connection_cut) server_->options_.on_connection_cut(peer_, "send_idle");
    close("client read nothing of the response for " +
          std::to_string(server_->options_.send_idle_timeout.count()) + " ms");
  }

  void armIdleTimer() {
    timer_.start(server_->options_.keepalive_timeout, [this] { shared_from_this()->close("keep-alive idle timeout"); });
  }

  void armHeaderTimer() {
    timer_.start(server_->options_.header_timeout, [this] { shared_from_this()->onReadTimeout("request head timeout"); });
  }

  // Runs only while the server wants the body (see pauseReading).
  void armBodyTimer() {
    if (!reading_wanted_) {
      timer_.stop();
      return;
    }
    timer_.start(server_->options_.body_idle_timeout,
                 [this] { shared_from_this()->onReadTimeout("request body idle timeout"); });
  }

  void onReadTimeout(const std::string& why) {
    if (closed_ || lingering_) return;
    if (!parser_.inMessage() && !exchange_) {
      close(why);
      return;
    }
    if (exchange_ && exchange_->headSent()) {
      close(why);
      return;
    }
    rejectRequest(408, why);
  }

  HttpServer* server_;
  StreamPtr stream_;
  HttpParser parser_;
  Timer timer_;
  Timer send_timer_;  // runs while the response waits over the high-water mark
  Endpoint peer_;
  ConnectionAdmission admission_;
  uint64_t delivered_at_check_ = 0;  // stream_->deliveredBytes() when send_timer_ was armed
  ServerExchangePtr exchange_;
  std::vector<Bytes> pending_;  // input after a complete request, parsed once its exchange ends
  bool reading_wanted_ = true;
  bool closing_ = false;
  bool cut_idle_ = true;  // with closing_: close once idle rather than wait for a next request
  bool closed_ = false;
  bool peer_closed_ = false;  // the client's EOF arrived
  // The lingering close (lingerThenClose): the answer that ends the connection is going out
  // (answer_written_: it and the FIN are out), and input is discarded until request_ended_.
  bool lingering_ = false;
  bool answer_written_ = false;
  bool request_ended_ = false;
  uint64_t discarded_ = 0;
  size_t unsent_at_check_ = 0;
  std::chrono::steady_clock::time_point linger_deadline_;
  std::weak_ptr<void> server_alive_;  // expires when the server is destroyed
  std::string head_buffer_;  // see swapHeadBuffer()
};

// ---------------------------------------------------------------------------------------------
// ServerExchange

ServerExchange::ServerExchange(ServerConnection* connection, RequestHead head, Endpoint peer)
    : connection_(connection),
      loop_(connection->stream().loop()),
      request_(std::move(head)),
      peer_(std::move(peer)),
      started_at_(std::chrono::steady_clock::now()),
      secure_(connection->stream().secure()) {
  request_complete_ = !request_.framing.hasBody();
}

ServerExchange::~ServerExchange() { HeaderList::recycle(request_.target); }

void ServerExchange::pauseRequestBody() {
  body_paused_ = true;
  if (active() && !request_complete_) connection_->pauseReading();
}

void ServerExchange::resumeRequestBody() {
  body_paused_ = false;
  if (!active() || request_complete_) return;
  maybeSendContinue();
  connection_->resumeReading();
}

void ServerExchange::maybeSendContinue() {
  if (!request_.expect_continue || continue_sent_ || head_sent_ || body_paused_ || !active()) return;
  continue_sent_ = true;
  connection_->write(std::string("HTTP/1.1 100 Continue\r\n\r\n"));
}

void ServerExchange::sendHead(ResponseHead head, std::optional<uint64_t> content_length) {
  if (!active() || head_sent_) return;
  head_sent_ = true;
  status_ = head.status;
  head.version_minor = 1;
  bool bodyless_status = head.status == 204 || head.status == 304 || head.status < 200;
  no_body_ = request_.method == "HEAD" || bodyless_status;
  head.headers.remove("Content-Length");
  head.headers.remove("Transfer-Encoding");
  head.headers.remove("Connection");
  bool close = !request_.keep_alive || close_after_ || connection_->closing();
  if (content_length && !bodyless_status) {
    head.headers.add("Content-Length", std::to_string(*content_length));
  } else if (!bodyless_status && request_.method != "HEAD") {
    if (request_.version_minor >= 1) {
      chunked_ = true;
      head.headers.add("Transfer-Encoding", "chunked");
    } else {
      close = true;  // HTTP/1.0 client: the body runs until close
    }
  }
  // A response that ends before its request body was read ends the connection too.
  if (!request_complete_) close = true;
  if (close) {
    close_after_ = true;
    head.headers.add("Connection", "close");
  } else if (request_.version_minor == 0) {
    head.headers.add("Connection", "keep-alive");
  }
  connection_->swapHeadBuffer(pending_head_);
  lent_head_buffer_ = true;
  pending_head_.clear();
  appendResponseHead(head, &pending_head_);
  // Flushed after this callback at the latest (runDeferred), unless body bytes take it first.
  LoopContext::of(loop_).defer(std::shared_ptr<LoopContext::Deferred>(shared_from_this(), this));
}

void ServerExchange::flushHead() {
  if (pending_head_.empty() || connection_ == nullptr) return;
  connection_->writeCopied(pending_head_, Bytes(), {});
  giveBackHeadBuffer();
}

void ServerExchange::giveBackHeadBuffer() {
  pending_head_.clear();
  if (lent_head_buffer_ && connection_ != nullptr) connection_->swapHeadBuffer(pending_head_);
  lent_head_buffer_ = false;
}

void ServerExchange::sendBody(Bytes data) {
  if (!active() || !head_sent_ || response_complete_ || data.empty()) return;
  body_bytes_sent_ += data.size;
  if (no_body_) return;
  // The head, if still held, leaves with these bytes; a chunk's framing around them.
  if (chunked_) pending_head_.append(chunkSizeLine(data.size));
  connection_->writeCopied(pending_head_, std::move(data), chunked_ ? std::string_view("\r\n") : std::string_view());
  giveBackHeadBuffer();
}

void ServerExchange::sendBody(std::string text) {
  if (text.empty()) return;
  sendBody(Bytes::copyOf(text));
}

void ServerExchange::finish() {
  if (!active() || !head_sent_ || response_complete_) return;
  response_complete_ = true;
  if (chunked_ && !no_body_) {
    pending_head_ += "0\r\n\r\n";  // the last chunk, in one write with the head if that is still held
  }
  flushHead();
  // Done even when the request body is unread: the handler has answered, and the connection
  // then discards what is left and closes (sendHead announced Connection: close).
  done_ = true;
  releaseHandler();
  ServerConnection* connection = connection_;
  connection_ = nullptr;  // the connection moves on (or away): this exchange holds no link to it
  connection->exchangeDone(this);
}

void ServerExchange::respond(int status, std::string_view content_type, std::string body, HeaderList extra) {
  ResponseHead head;
  head.status = status;
  head.headers = std::move(extra);
  if (!content_type.empty()) head.headers.set("Content-Type", std::string(content_type));
  sendHead(std::move(head), body.size());
  sendBody(std::move(body));
  finish();
}

void ServerExchange::abort() {
  if (!active()) return;
  done_ = true;
  releaseHandler();
  ServerConnection* connection = connection_;
  connection_ = nullptr;
  connection->close("response aborted");
}

size_t ServerExchange::queuedBytes() const { return connection_ != nullptr ? connection_->stream().queuedBytes() : 0; }

bool ServerExchange::overHighWater() const { return connection_ != nullptr && connection_->stream().overHighWater(); }

void ServerExchange::deliverBody(const Bytes& data) {
  request_body_bytes_ += data.size;
  if (!done_ && handler_) handler_->onRequestBody(data);
}

void ServerExchange::deliverRequestComplete() {
  request_complete_ = true;
  if (!done_ && handler_) handler_->onRequestComplete();
}

void ServerExchange::deliverDrained() {
  if (!done_ && handler_) handler_->onWritable();
}

void ServerExchange::detach(const std::string& why) {
  bool was_done = done_;
  done_ = true;
  connection_ = nullptr;
  if (!was_done && handler_) handler_->onAbort(why);
  releaseHandler();
}

void ServerExchange::releaseHandler() {
  if (!handler_) return;
  // The handler may be on the stack right now (it called finish()), and it may hold the last
  // reference to this exchange: drop it after the current callback has returned.
  LoopContext::of(loop_).releaseLater(std::move(handler_));
}

// ---------------------------------------------------------------------------------------------
// HttpServer

HttpServer::HttpServer(uv_loop_t* loop, ServerOptions options, RequestCallback on_request)
    : loop_(loop), options_(std::move(options)), on_request_(std::move(on_request)) {}

HttpServer::~HttpServer() {
  for (auto& listener : listeners_) listener->close();
  auto connections = connections_;
  for (const auto& connection : connections) connection->close("server destroyed");
  connections_.clear();
}

Listener::AcceptCallback HttpServer::acceptor(bool tls) {
  return [this, tls](StreamPtr stream) {
    if (tls) {
      if (!tls_context_) {
        stream->close();
        return;
      }
      stream->startTls(tls_context_);
    }
    accept(std::move(stream));
  };
}

int HttpServer::bind(const Endpoint& endpoint, int unix_mode, bool tls) {
  auto listener = std::make_unique<Listener>(loop_);
  int status = listener->bind(endpoint, acceptor(tls), unix_mode);
  if (status == 0) {
    listeners_.push_back(std::move(listener));
    listener_tls_.push_back(tls);
  }
  return status;
}

int HttpServer::adopt(int fd, const Endpoint& endpoint, bool tls) {
  auto listener = std::make_unique<Listener>(loop_);
  int status = listener->adopt(fd, endpoint, acceptor(tls));
  if (status == 0) {
    listeners_.push_back(std::move(listener));
    listener_tls_.push_back(tls);
  }
  return status;
}

std::vector<HttpServer::BoundSocket> HttpServer::boundSockets() const {
  std::vector<BoundSocket> sockets;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    sockets.push_back(BoundSocket{listeners_[i]->boundEndpoint(), listener_tls_[i], listeners_[i]->fd()});
  }
  return sockets;
}

int HttpServer::startAccepting() {
  for (auto& listener : listeners_) {
    if (int status = listener->startAccepting(); status != 0) return status;
  }
  return 0;
}

int HttpServer::listen(const Endpoint& endpoint, int unix_mode, bool tls) {
  int status = bind(endpoint, unix_mode, tls);
  if (status != 0) return status;
  status = listeners_.back()->startAccepting();
  if (status != 0) {
    listeners_.pop_back();
    listener_tls_.pop_back();
  }
  return status;
}

Endpoint HttpServer::boundEndpoint() const {
  return listeners_.empty() ? Endpoint() : listeners_.front()->boundEndpoint();
}

void HttpServer::setOptions(ServerOptions options) { options_ = std::move(options); }

void HttpServer::accept(StreamPtr stream) {
  if (shutting_down_) {
    stream->close();
    return;
  }
  Endpoint peer = stream->peer();
  ConnectionAdmission admission = options_.admit ? options_.admit(peer) : ConnectionAdmission::kUncounted;
  if (admission == ConnectionAdmission::kClose) {
    stream->close();
    if (options_.on_connection_cut) options_.on_connection_cut(peer, "over_limit");
    return;
  }
  auto connection = std::make_shared<ServerConnection>(this, std::move(stream), std::move(peer), admission);
  connections_.insert(connection);
  connection->start();
  if (connections_.size() >= options_.max_connections && !accepting_paused_) {
    accepting_paused_ = true;
    for (auto& listener : listeners_) listener->pause();
  }
}

void HttpServer::connectionClosed(const std::shared_ptr<ServerConnection>& connection) {
  if (connections_.erase(connection) == 0) return;
  ConnectionAdmission admission = connection->admission();
  if ((admission == ConnectionAdmission::kAdmitted || admission == ConnectionAdmission::kOverLimit) && options_.release) {
    options_.release(connection->peer(), admission);
  }
  if (accepting_paused_ && !shutting_down_ && connections_.size() < options_.max_connections) {
    accepting_paused_ = false;
    for (auto& listener : listeners_) listener->resume();
  }
  if (shutting_down_ && connections_.empty() && shutdown_done_) {
    shutdown_timer_.reset();
    idle_drain_timer_.reset();
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    done();
  }
}

void HttpServer::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  stopServing(grace, std::move(done), false);
}

void HttpServer::handOver(std::chrono::milliseconds grace, std::function<void()> done) {
  stopServing(grace, std::move(done), true);
}

void HttpServer::stopServing(std::chrono::milliseconds grace, std::function<void()> done, bool hand_over) {
  shutting_down_ = true;
  for (auto& listener : listeners_) {
    if (hand_over) {
      listener->release();
    } else {
      listener->close();
    }
  }
  listeners_.clear();
  listener_tls_.clear();
  shutdown_done_ = std::move(done);
  // An idle keep-alive client may be sending its next request right now: cutting it would lose
  // that request. Idle connections are spared (their next request is answered with
  // "Connection: close"): on a hand-over until the grace ends, on a stop for kIdleDrain.
  auto connections = connections_;
  for (const auto& connection : connections) connection->closeWhenIdle(/*cut_idle=*/false);
  if (!hand_over && !connections.empty()) {
    idle_drain_timer_ = std::make_unique<Timer>(loop_);
    idle_drain_timer_->start(std::min(grace, kIdleDrain), [this] {
      auto remaining = connections_;
      for (const auto& connection : remaining) connection->closeWhenIdle(/*cut_idle=*/true);
    });
  }
  if (connections_.empty() || connections.empty()) {
    LoopContext::of(loop_).defer([this] {
      if (connections_.empty() && shutdown_done_) {
        auto finished = std::move(shutdown_done_);
        shutdown_done_ = nullptr;
        finished();
      }
    });
    return;
  }
  shutdown_timer_ = std::make_unique<Timer>(loop_);
  shutdown_timer_->start(grace, [this] {
    auto remaining = connections_;
    for (const auto& connection : remaining) connection->close("shutdown grace period over");
  });
}

}  // namespace stickyproxy
