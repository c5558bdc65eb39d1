#include "load/user_agent.h"

#include <utility>

#include "proxy/http/gzip_encoder.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/stream.h"

namespace stickyproxy::load {

UserAgent::UserAgent(uv_loop_t* loop, Settings settings) : loop_(loop), settings_(std::move(settings)) {}

UserAgent::~UserAgent() {
  *alive_ = false;
  close();
}

void UserAgent::close() {
  if (connection_) {
    connection_->detachHandler();
    connection_->close();
    connection_.reset();
  }
}

double UserAgent::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at_).count();
}

void UserAgent::send(AgentRequest request, std::function<void(AgentResponse&&)> done) {
  request_ = std::move(request);
  done_ = std::move(done);
  response_ = AgentResponse();
  sent_at_ = std::chrono::steady_clock::now();
  if (connection_ && (!connection_->reusable() || sent_at_ - last_used_ > settings_.reconnect_after_idle)) close();
  start(false);
}

void UserAgent::start(bool fresh_connection) {
  got_body_byte_ = false;
  gzipped_ = false;
  compressed_.clear();
  response_.body.clear();
  response_.wire_bytes = 0;
  if (fresh_connection) close();
  if (connection_) {
    connection_reused_ = true;
    writeRequest();
    return;
  }
  connection_reused_ = false;
  connection_ = ClientConnection::create(loop_, settings_.target);
  ++connections_opened_;
  std::weak_ptr<bool> alive = alive_;
  ClientConnection* connecting = connection_.get();
  connection_->connect(settings_.connect_timeout, [this, alive, connecting](int status) {
    if (alive.expired() || connection_.get() != connecting) return;
    if (status != 0) {
      close();
      finish("connect: " + uvErrorText(status));
      return;
    }
    writeRequest();
  });
}

void UserAgent::writeRequest() {
  RequestHead head;
  head.method = request_.method;
  head.target = request_.target;
  head.headers.add("Host", settings_.host_header);
  head.headers.add("User-Agent", "stickyproxy-load");
  head.headers.add("Accept", request_.accept);
  if (settings_.accept_gzip) head.headers.add("Accept-Encoding", "gzip");
  if (!jar_.empty()) head.headers.add("Cookie", jar_.header());
  if (!request_.content_type.empty()) head.headers.add("Content-Type", request_.content_type);
  uint64_t length = 0;
  for (const Bytes& piece : request_.body) length += piece.size;
  if (length > 0 || request_.method == "POST" || request_.method == "PUT") head.framing.content_length = length;
  // A failure reported from inside these calls may already have replaced the connection.
  ClientConnection* sending = connection_.get();
  connection_->startRequest(head, this, settings_.response_timeout);
  if (length == 0) return;
  for (const Bytes& piece : request_.body) {
    if (connection_.get() != sending) return;
    connection_->sendBody(piece);
  }
  if (connection_.get() == sending) connection_->endBody();
}

void UserAgent::onResponseHead(ResponseHead&& head) {
  response_.status = head.status;
  const std::string* encoding = head.headers.find("Content-Encoding");
  gzipped_ = encoding != nullptr && equalsIgnoreCase(trimOws(*encoding), "gzip");
  response_.head = std::move(head);
  response_.first_byte = elapsed();
}

void UserAgent::onResponseBody(const Bytes& data) {
  if (!got_body_byte_) {
    got_body_byte_ = true;
    response_.first_byte = elapsed();
  }
  response_.wire_bytes += data.size;
  (gzipped_ ? compressed_ : response_.body).append(data.data, data.size);
}

void UserAgent::onResponseComplete() {
  last_used_ = std::chrono::steady_clock::now();
  if (connection_ && !connection_->reusable()) close();
  if (gzipped_ && !gunzip(compressed_, &response_.body)) {
    finish("the gzip body does not inflate");
    return;
  }
  finish({});
}

void UserAgent::onFailure(ClientFailure failure, int status) {
  bool answer_started = connection_ && connection_->responseStarted();
  close();
  // A kept-alive connection the server closed while idle: a browser sends the request again on a
  // new connection, since it had no answer to act on.
  if (failure == ClientFailure::kConnectionLost && connection_reused_ && !answer_started && !response_.resent) {
    response_.resent = true;
    start(true);
    return;
  }
  std::string text = clientFailureName(failure);
  if (status != 0) text += ": " + uvErrorText(status);
  finish(text);
}

void UserAgent::finish(std::string failure) {
  response_.total = elapsed();
  if (response_.first_byte == 0) response_.first_byte = response_.total;
  response_.failure = std::move(failure);
  if (response_.failure.empty()) {
    for (const Header& field : response_.head.headers.fields()) {
      if (equalsIgnoreCase(field.name, "Set-Cookie")) jar_.take(field.value);
    }
  }
  std::weak_ptr<bool> alive = alive_;
  LoopContext::of(loop_).defer([this, alive] {
    if (alive.expired() || !done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(response_));
  });
}

}  // namespace stickyproxy::load
