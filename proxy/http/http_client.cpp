#include "proxy/http/http_client.h"

namespace stickyproxy {

const char* clientFailureName(ClientFailure failure) {
  switch (failure) {
    case ClientFailure::kConnectFailed: return "connect_failed";
    case ClientFailure::kConnectTimeout: return "connect_timeout";
    case ClientFailure::kConnectionLost: return "connection_lost";
    case ClientFailure::kResponseTimeout: return "response_timeout";
    case ClientFailure::kBadResponse: return "bad_response";
  }
  return "unknown";
}

ClientConnectionPtr ClientConnection::create(uv_loop_t* loop, Endpoint endpoint, ParserLimits limits) {
  return std::make_shared<ClientConnection>(loop, std::move(endpoint), limits);
}

ClientConnection::ClientConnection(uv_loop_t* loop, Endpoint endpoint, ParserLimits limits)
    : endpoint_(std::move(endpoint)),
      stream_(Stream::create(loop, endpoint_.kind)),
      parser_(HttpParser::Kind::kResponse, this, limits),
      timer_(loop),
      idle_since_(std::chrono::steady_clock::now()) {}

ClientConnection::~ClientConnection() {
  // The stream outlives us until its close callback and points back at us: cut the link.
  stream_->close();
}

void ClientConnection::connect(std::chrono::milliseconds timeout, std::function<void(int status)> done) {
  auto shared_done = std::make_shared<std::function<void(int)>>(std::move(done));
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  timer_.start(timeout, [weak, shared_done] {
    auto self = weak.lock();
    if (!self || !*shared_done) return;
    auto callback = std::move(*shared_done);
    *shared_done = nullptr;
    self->close();
    callback(UV_ETIMEDOUT);
  });
  stream_->connect(endpoint_, [weak, shared_done](int status) {
    auto self = weak.lock();
    if (!*shared_done) return;  // timed out already
    auto callback = std::move(*shared_done);
    *shared_done = nullptr;
    if (!self) {
      callback(UV_ECANCELED);
      return;
    }
    self->timer_.stop();
    if (status == 0 && !self->closed_) {
      self->connected_ = true;
      self->stream_->setHandler(self.get());
      self->stream_->startReading();
    } else if (status == 0) {
      status = UV_ECANCELED;
    } else {
      self->close();
    }
    callback(status);
  });
}

void ClientConnection::startRequest(const RequestHead& head, ClientExchangeHandler* handler,
                                    std::chrono::milliseconds response_timeout) {
  startWrittenRequest(serializeFramedRequestHead(head), head.method == "HEAD", head.framing, handler,
                      response_timeout);
}

void ClientConnection::startWrittenRequest(std::string_view wire, bool head_method, BodyFraming framing,
                                           ClientExchangeHandler* handler, std::chrono::milliseconds response_timeout) {
  handler_ = handler;
  response_timeout_ = response_timeout;
  in_exchange_ = true;
  ++exchanges_;
  request_chunked_ = framing.chunked;
  request_sent_ = false;
  request_complete_ = !framing.hasBody();
  response_started_ = false;
  response_complete_ = false;
  head_request_ = head_method;
  interim_ = false;
  if (closed_ || broken_) {
    auto self = shared_from_this();
    fail(ClientFailure::kConnectionLost, UV_ECONNRESET);
    return;
  }
  stream_->writeCopied(wire, Bytes(), {});
  request_sent_ = true;
  updateResponseTimer();
}

void ClientConnection::sendBody(Bytes data) {
  if (closed_ || !in_exchange_ || data.empty()) return;
  if (request_chunked_) {
    std::vector<Bytes> pieces;
    pieces.push_back(Bytes::copyOf(chunkSizeLine(data.size)));
    pieces.push_back(std::move(data));
    pieces.push_back(Bytes::copyOf("\r\n"));
    stream_->write(std::move(pieces));
  } else {
    stream_->write(std::move(data));
  }
  // Over the high-water mark the server is slow to take the body: that wait is counted (from
  // the first piece it left waiting, not re-armed by ours).
  if (!timer_.armed() || !stream_->overHighWater()) updateResponseTimer();
}

void ClientConnection::endBody() {
  if (closed_ || !in_exchange_ || request_complete_) return;
  request_complete_ = true;
  if (request_chunked_) stream_->write(std::string("0\r\n\r\n"));
  updateResponseTimer();
}

void ClientConnection::pauseResponse() {
  response_paused_ = true;
  stream_->stopReading();
  updateResponseTimer();
}

void ClientConnection::resumeResponse() {
  response_paused_ = false;
  if (!closed_ && connected_) stream_->startReading();
  updateResponseTimer();
}

void ClientConnection::detachHandler() {
  handler_ = nullptr;
  if (in_exchange_ && !(response_complete_ && request_complete_)) broken_ = true;
}

bool ClientConnection::reusable() const {
  return connected_ && !closed_ && !broken_ && server_keep_alive_ && !in_exchange_ && !parser_.inMessage();
}

void ClientConnection::close() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  stream_->close();
}

bool ClientConnection::waitingOnServer() const {
  if (closed_ || !in_exchange_ || response_paused_) return false;
  return request_complete_ || stream_->overHighWater();
}

void ClientConnection::updateResponseTimer() {
  if (response_timeout_.count() <= 0 || !waitingOnServer()) {
    if (connected_) timer_.stop();  // before that, the timer bounds the connect
    return;
  }
  // [this] alone (no allocation): a member timer never fires after its owner is gone.
  timer_.start(response_timeout_, [this] { shared_from_this()->fail(ClientFailure::kResponseTimeout, UV_ETIMEDOUT); });
}

void ClientConnection::fail(ClientFailure failure, int status) {
  auto keep = shared_from_this();
  broken_ = true;
  ClientExchangeHandler* handler = handler_;
  handler_ = nullptr;
  in_exchange_ = false;
  close();
  if (handler != nullptr) handler->onFailure(failure, status);
}

void ClientConnection::onStreamRead(const Bytes& data) {
  auto keep = shared_from_this();
  if (!in_exchange_) {
    // Bytes from an idle connection are a protocol error; never reuse it.
    broken_ = true;
    close();
    if (on_idle_closed_) on_idle_closed_();
    return;
  }
  Bytes rest = data;
  while (!rest.empty() && !closed_ && in_exchange_) {
    size_t consumed = parser_.feed(rest);
    if (parser_.error() != ParseError::kNone) {
      fail(ClientFailure::kBadResponse, 0);
      return;
    }
    rest = rest.suffix(consumed);
    if (interim_) {
      interim_ = false;  // a 1xx: the final response follows in the same exchange
      continue;
    }
    if (!rest.empty() && !in_exchange_) {
      // Data after the response: the server is not speaking HTTP/1.1 correctly.
      broken_ = true;
      close();
      return;
    }
  }
}

void ClientConnection::onStreamEnd(int status) {
  auto keep = shared_from_this();
  if (!in_exchange_) {
    close();
    if (on_idle_closed_) on_idle_closed_();
    return;
  }
  if (status == UV_EOF && parser_.inMessage()) {
    parser_.finish();  // completes a body that runs until close
    if (!in_exchange_) {
      close();
      return;
    }
  }
  fail(ClientFailure::kConnectionLost, status);
}

void ClientConnection::onStreamDrained() {
  auto keep = shared_from_this();
  updateResponseTimer();  // the server took what waited
  if (handler_ != nullptr) handler_->onRequestWritable();
}

bool ClientConnection::onResponseHead(ResponseHead&& head) {
  if (head.status >= 100 && head.status < 200 && head.status != 101) {
    interim_ = true;
    return false;
  }
  response_started_ = true;
  server_keep_alive_ = head.keep_alive;
  updateResponseTimer();
  bool no_body = head_request_;
  if (handler_ != nullptr) handler_->onResponseHead(std::move(head));
  return no_body;
}

void ClientConnection::onBody(const Bytes& data) {
  updateResponseTimer();
  if (handler_ != nullptr) handler_->onResponseBody(data);
}

void ClientConnection::onMessageComplete() {
  if (interim_) return;
  timer_.stop();
  response_complete_ = true;
  in_exchange_ = false;
  if (!request_complete_) broken_ = true;  // the server answered before the whole body arrived
  // A pause was for this response (its reader was slow); the rest of it may have been parsed
  // from bytes already read. An idle connection must read again, or the next response and a
  // close by the server would go unseen.
  if (response_paused_) resumeResponse();
  idle_since_ = std::chrono::steady_clock::now();
  ClientExchangeHandler* handler = handler_;
  handler_ = nullptr;
  if (handler != nullptr) handler->onResponseComplete();
}

}  // namespace stickyproxy
