#include "proxy/core/proxy_request.h"

#include <picojson.h>

#include "proxy/core/access_log.h"
#include "proxy/core/client_address.h"
#include "proxy/core/proxy.h"
#include "proxy/core/upstream_head.h"
#include "proxy/core/worker.h"
#include "proxy/net/loop_context.h"

namespace stickyproxy {

namespace {

// Delay before trying again after a refused connection: long enough for the supervisor to
// notice the exit of a worker that just died, short next to any user-visible latency.
constexpr int kRetryDelayMs = 50;
// How long a request whose connection dropped waits to learn whether its worker's process
// exited (SIGCHLD comes a moment after the socket closes), and how often it looks.
constexpr std::chrono::milliseconds kExitWait{500};
constexpr std::chrono::milliseconds kExitPoll{10};

}  // namespace

ProxyRequest::ProxyRequest(Proxy& proxy, ServerExchangePtr exchange, std::string client)
    : proxy_(proxy),
      client_(std::move(client)),
      exchange_(std::move(exchange)),
      ticket_(proxy.nextTicket()),
      started_(std::chrono::steady_clock::now()),
      timer_(proxy.loop()),
      replay_(proxy.config().limits.retry_buffer, &proxy.replayBudget()) {}

ProxyRequest::~ProxyRequest() {
  if (upstream_) {
    upstream_->detachHandler();
    upstream_->close();
  }
}

void ProxyRequest::start() {
  const HeadVerdict& verdict = exchange_->request().verdict;
  if (!verdict.compliant()) proxy_.metrics().desyncRequest(headClassName(verdict.head_class), verdict.label());
  const Config& config = proxy_.config();
  const RequestHead& request = exchange_->request();
  session_.emplace(config.routing, *proxy_.cookieSigner(), request.headers);
  secure_ = clientUsedHttps(config.trusted_proxies, exchange_->peer(), exchange_->secure(), request.headers);
  if (!session_->cookieRefusal().empty()) proxy_.metrics().cookieRefused(session_->cookieRefusal());
  if (!session_->valid()) {
    respondError(500, "could not create a session key", "rand_bytes_failed");
    return;
  }
  // The body waits in the client's socket until an upstream connection is ready for it.
  exchange_->pauseRequestBody();
  first_attempt_ = std::chrono::steady_clock::now();
  attempt();
}

void ProxyRequest::attempt() {
  if (finished_) return;
  const RouteRequest& route_request = session_->routeRequest();
  route_ = proxy_.router().route(route_request, std::chrono::system_clock::now());
  if (route_.moved_now) {
    // Counted by why the worker it left could not take it: the one announced, else its pin's.
    std::string left = route_.announce_previous;
    if (left.empty() && route_request.pin) left = route_request.pin->worker;
    proxy_.metrics().sessionsRepinned(proxy_.moveReason(left), 1);
  }
  if (route_.table_changed) {
    proxy_.sessionsChanged();
  } else if (route_.repinned) {
    proxy_.movedSessionUsed();
  }
  set_cookie_ = session_->setCookieFor(route_, proxy_.config().routing, *proxy_.cookieSigner(), secure_);
  worker_ = route_.worker_index ? proxy_.sharedWorker(size_t{*route_.worker_index}) : nullptr;
  if (worker_ == nullptr) {
    respondError(503, "No worker is available", "no_ready_worker");
    return;
  }
  if (worker_->admission().tryAdmit()) {
    admitted();
    return;
  }
  std::weak_ptr<ProxyRequest> weak = shared_from_this();
  switch (worker_->admission().request(ticket_, [weak](bool admitted) {
    auto self = weak.lock();
    if (!self) return;
    if (admitted) {
      self->admitted();
      return;
    }
    // The worker went down while we waited: find the session's new pin.
    self->proxy_.metrics().retried("worker_down");
    self->queued_ = false;
    self->timer_.stop();
    self->attempt();
  })) {
    case Admission::Result::kAdmitted:
      admitted();
      return;
    case Admission::Result::kQueued:
      queued_ = true;
      timer_.start(proxy_.config().timeouts.queue, [weak] {
        auto self = weak.lock();
        if (!self || !self->queued_) return;
        self->queued_ = false;
        self->worker_->admission().cancel(self->ticket_);
        self->respondError(503, "The worker is busy; try again shortly", "queue_timeout");
      });
      return;
    case Admission::Result::kRejected:
      respondError(503, "The worker is busy; try again shortly", "queue_full");
      return;
  }
}

void ProxyRequest::admitted() {
  queued_ = false;
  holds_slot_ = true;
  timer_.stop();
  if (finished_) {
    releaseSlot();
    return;
  }
  if (ClientConnectionPtr idle = worker_->pool().takeIdle()) {
    connected(std::move(idle), 0, true);
    return;
  }
  std::weak_ptr<ProxyRequest> weak = shared_from_this();
  worker_->pool().acquire([weak](ClientConnectionPtr connection, int status, bool reused) {
    auto self = weak.lock();
    if (!self) {
      if (connection) connection->close();
      return;
    }
    self->connected(std::move(connection), status, reused);
  });
}

void ProxyRequest::connected(ClientConnectionPtr connection, int status, bool /*reused*/) {
  if (finished_) {
    if (connection) connection->close();
    releaseSlot();
    return;
  }
  if (status != 0) {
    releaseSlot();
    proxy_.noteConnectFailure(*worker_, "connect: " + uvErrorText(status));
    // Nothing reached the worker: the request may go again, to the new pin if it moved.
    if (retryUnsent(status == UV_ETIMEDOUT ? "connect_timeout" : "connect_failed")) return;
    if (status == UV_ETIMEDOUT) {
      respondError(504, "The worker did not accept the connection in time", "upstream_connect_timeout");
    } else {
      respondError(502, "The worker could not be reached", "upstream_connect_failed");
    }
    return;
  }
  upstream_ = std::move(connection);
  worker_pid_ = worker_->pid();
  forwarded_previous_ = route_.announce_previous;
  const RequestHead& request = exchange_->request();
  upstream_->startWrittenRequest(upstreamHead(), request.method == "HEAD", request.framing, this,
                                 proxy_.config().timeouts.upstream_response);
  if (!upstream_) return;  // failed synchronously and was handled
  std::vector<Bytes> pending = std::move(pending_body_);
  pending_body_.clear();
  for (Bytes& piece : pending) {
    upstream_->sendBody(std::move(piece));
    if (!upstream_) return;
  }
  if (request_complete_) {
    upstream_->endBody();
  } else if (!upstream_->overHighWater()) {
    exchange_->resumeRequestBody();  // else onRequestWritable() resumes it once the worker has read
  }
}

std::string_view ProxyRequest::upstreamHead() const {
  ForwardingContext context;
  std::string peer_ip = exchange_->peer().host();
  context.peer_ip = peer_ip.empty() ? std::string_view("unix") : std::string_view(peer_ip);
  context.peer_trusted = peerIsTrusted(proxy_.config().trusted_proxies, exchange_->peer());
  context.secure = exchange_->secure();
  context.previous_worker = route_.announce_previous;
  context.close_after = upstreamEndsAfter();
  if (worker_ != nullptr) context.default_host = worker_->name();
  std::string& wire = LoopContext::of(proxy_.loop()).scratch();
  wire.clear();
  writeUpstreamHead(exchange_->request(), context, &wire);
  return wire;
}

bool ProxyRequest::retryUnsent(const char* cause) {
  // Never reached a worker: always safe to send again, for as long as a connect may take.
  auto elapsed = std::chrono::steady_clock::now() - first_attempt_;
  if (elapsed > proxy_.config().timeouts.upstream_connect) return false;
  exchange_->pauseRequestBody();
  proxy_.metrics().retried(cause);
  std::weak_ptr<ProxyRequest> weak = shared_from_this();
  timer_.start(std::chrono::milliseconds(kRetryDelayMs), [weak] {
    if (auto self = weak.lock()) self->attempt();
  });
  return true;
}

void ProxyRequest::replay(const char* cause) {
  ++replays_;
  proxy_.metrics().retried(cause);
  pending_body_ = replay_.pieces();
  replay_.release();  // never replayed twice; pending_body_ holds the copy until it is sent
  attempt();
}

bool ProxyRequest::replayAfterLoss(bool request_sent) {
  if (!replay_.replayable() || replays_ > 0) return false;
  exchange_->pauseRequestBody();
  if (!request_sent) {
    // The connection closed before a byte of the request left (a pooled connection the worker
    // closed as it was handed over): the worker never saw it.
    replay("connection_lost");
    return true;
  }
  const bool idempotent = exchange_->request().isIdempotent();
  if (!worker_->supervised()) {
    if (!idempotent) return false;
    replay("connection_lost");
    return true;
  }
  if (!idempotent && !proxy_.config().retry_non_idempotent) return false;
  // A dropped connection often means a dying worker, whose exit the supervisor learns a moment
  // later; replayed before that, the request would reach the same dying process. Wait for it.
  exit_wait_until_ = std::chrono::steady_clock::now() + kExitWait;
  waitForWorkerExit();
  return true;
}

void ProxyRequest::waitForWorkerExit() {
  std::weak_ptr<ProxyRequest> weak = shared_from_this();
  timer_.start(kExitPoll, [weak] {
    auto self = weak.lock();
    if (!self || self->finished_) return;
    Worker* worker = self->proxy_.findWorker(self->route_.worker);
    bool exited = worker == nullptr || worker->pid() != self->worker_pid_ || !worker->up();
    if (exited) {
      self->replay("worker_exit");
    } else if (std::chrono::steady_clock::now() < self->exit_wait_until_) {
      self->waitForWorkerExit();
    } else if (self->exchange_->request().isIdempotent()) {
      self->replay("connection_lost");  // the worker lives on: safe to ask it again
    } else {
      self->respondError(502, "The worker failed while handling the request", "upstream_connection_lost",
                         "upstream_connection_lost");
    }
  });
}

void ProxyRequest::releaseSlot() {
  if (!holds_slot_ || worker_ == nullptr) return;
  holds_slot_ = false;
  worker_->admission().release();
}

void ProxyRequest::detachUpstream(bool reusable) {
  if (!upstream_) return;
  ClientConnectionPtr connection = std::move(upstream_);
  connection->detachHandler();
  if (reusable && worker_ != nullptr && worker_->up()) {
    worker_->pool().release(std::move(connection));
  } else {
    connection->close();
  }
}

void ProxyRequest::abortCompression() {
  detachUpstream(false);
  releaseSlot();
  finishLog(exchange_->status(), "compression failed mid-response");
  exchange_->abort();
}

// --- client side ---

void ProxyRequest::onRequestBody(const Bytes& data) {
  if (finished_) return;
  // Counted once, as the body stops being kept (not after a release, nor when nothing is kept).
  const bool was_kept = replay_.replayable();
  if (!replay_.append(data) && was_kept && proxy_.config().limits.retry_buffer > 0) {
    proxy_.metrics().replayBodyDropped(replay_.dropped() == ReplayBuffer::Dropped::kBudget ? "total" : "request");
  }
  if (!upstream_) {
    pending_body_.push_back(data);
    return;
  }
  upstream_->sendBody(data);
  if (upstream_ && upstream_->overHighWater()) exchange_->pauseRequestBody();
}

void ProxyRequest::onRequestComplete() {
  request_complete_ = true;
  if (upstream_ && !finished_) upstream_->endBody();
}

void ProxyRequest::onWritable() {
  if (upstream_) upstream_->resumeResponse();
}

void ProxyRequest::onRequestWritable() {
  if (!finished_) exchange_->resumeRequestBody();
}

void ProxyRequest::onAbort(const std::string& why) {
  if (finished_) return;
  timer_.stop();
  if (queued_ && worker_ != nullptr) worker_->admission().cancel(ticket_);
  queued_ = false;
  detachUpstream(false);
  releaseSlot();
  finishLog(499, why);
}

// --- upstream side ---

void ProxyRequest::onResponseHead(ResponseHead&& head) {
  if (finished_) return;
  response_started_ = true;
  replay_.release();  // the worker has answered: this request is never sent again
  if (!route_.announce_previous.empty() && !announced_) {
    announced_ = true;
    proxy_.sessions().markAnnounced(session_->routeRequest().key_hash);
    proxy_.sessionsChanged();
  }
  removeHopByHopHeaders(head.headers);
  if (!set_cookie_.empty()) head.headers.add("Set-Cookie", set_cookie_);
  const TlsConfig& tls = proxy_.config().tls;
  if (exchange_->secure() && tls.hsts.count() > 0 && head.headers.find("Strict-Transport-Security") == nullptr) {
    head.headers.add("Strict-Transport-Security",
                     "max-age=" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(tls.hsts).count()));
  }
  compressor_ = ResponseCompressor::start(proxy_.config().compression, exchange_->request(), &head,
                                          &LoopContext::of(proxy_.loop()).slabs());
  std::optional<uint64_t> length;
  if (!compressor_ && !head.framing.chunked && !head.framing.until_close) {
    length = head.framing.content_length.value_or(0);
  }
  exchange_->sendHead(std::move(head), length);
}

void ProxyRequest::onResponseBody(const Bytes& data) {
  if (finished_) return;
  if (compressor_) {
    if (!compressor_->feed(data, [this](Bytes out) { exchange_->sendBody(std::move(out)); })) {
      abortCompression();
      return;
    }
  } else {
    exchange_->sendBody(data);
  }
  if (exchange_->overHighWater() && upstream_) upstream_->pauseResponse();
}

void ProxyRequest::onResponseComplete() {
  if (finished_) return;
  if (compressor_) {
    if (!compressor_->finish([this](Bytes out) { exchange_->sendBody(std::move(out)); })) {
      abortCompression();
      return;
    }
    compressor_.reset();
  }
  int status = exchange_->status();
  detachUpstream(!upstreamEndsAfter());
  releaseSlot();
  finishLog(status, "");
  exchange_->finish();
}

void ProxyRequest::onFailure(ClientFailure failure, int status) {
  bool request_sent = upstream_ && upstream_->requestSent();
  upstream_.reset();  // it closed itself
  if (finished_) return;
  releaseSlot();
  std::string reason = clientFailureName(failure);
  if (status != 0) reason.append(" ").append(uvErrorText(status));
  if (response_started_) {
    // Part of the response is already with the client: cutting the connection is the only
    // honest way to say it is incomplete.
    worker_->counters().errors++;
    finishLog(exchange_->status(), "upstream failed mid-response: " + reason);
    exchange_->abort();
    return;
  }
  switch (failure) {
    case ClientFailure::kResponseTimeout:  // never replayed: the worker may still be at it
      respondError(504, "The worker did not answer in time", "upstream_response_timeout");
      return;
    case ClientFailure::kBadResponse:
      respondError(502, "The worker sent an invalid response", "upstream_bad_response");
      return;
    case ClientFailure::kConnectionLost:
      // The worker reset or closed a connection under a request: it may be dying, and its other
      // idle connections with it. The replay must not pick one of those.
      worker_->pool().closeIdle();
      if (replayAfterLoss(request_sent)) return;
      break;
    case ClientFailure::kConnectFailed:
    case ClientFailure::kConnectTimeout:
      if (retryUnsent("connect_failed")) return;
      break;
  }
  respondError(502, "The worker failed while handling the request", "upstream_" + reason,
               "upstream_" + std::string(clientFailureName(failure)));
}

void ProxyRequest::respondError(int status, const std::string& message, const std::string& note,
                                std::string_view cause) {
  if (finished_) return;
  proxy_.metrics().proxyError(status, cause.empty() ? std::string_view(note) : cause);
  if (worker_ != nullptr && status >= 500) worker_->counters().errors++;
  finishLog(status, note);
  detachUpstream(false);
  releaseSlot();
  if (exchange_->headSent()) {
    exchange_->abort();
    return;
  }
  picojson::object body;
  body["status"] = picojson::value("error");
  body["message"] = picojson::value(message);
  HeaderList headers;
  if (status == 503) headers.add("Retry-After", "2");
  if (!set_cookie_.empty()) headers.add("Set-Cookie", set_cookie_);
  headers.add("Cache-Control", "no-store");
  exchange_->respond(status, "application/json", picojson::value(body).serialize() + "\n", std::move(headers));
}

bool ProxyRequest::upstreamEndsAfter() const {
  // An Ambiguous request is never followed by another on the same worker connection: the
  // worker's parser may have read it differently.
  return exchange_->request().verdict.head_class == HeadClass::kAmbiguous &&
         proxy_.config().desync_mode != DesyncMode::kMonitor;
}

void ProxyRequest::finishLog(int status, const std::string& note) {
  if (finished_) return;
  finished_ = true;
  timer_.stop();
  replay_.release();  // now, while the proxy's budget exists: this object may be freed later
  if (worker_ != nullptr) worker_->counters().requests++;
  const RequestHead& request = exchange_->request();
  AccessRecord record;
  record.time = std::chrono::system_clock::now();
  record.client = client_;
  record.method = request.method;
  record.path = request.path();
  record.status = status;
  record.bytes_sent = exchange_->bodyBytesSent();
  record.bytes_received = exchange_->requestBodyBytes();
  record.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  proxy_.metrics().requestFinished(worker_ != nullptr ? std::string_view(worker_->name()) : std::string_view(), status,
                                   record.duration_s);
  record.worker = worker_ != nullptr ? std::string_view(worker_->name()) : std::string_view();
  record.repinned = route_.repinned;
  record.key_hash = session_ ? std::string_view(session_->keyShort()) : std::string_view();
  record.previous_worker = forwarded_previous_;
  std::string desync_note;
  if (note.empty() && !request.verdict.compliant()) {
    desync_note = "desync " + std::string(headClassName(request.verdict.head_class)) + ": " +
                  std::string(request.verdict.label());
  }
  record.note = note.empty() ? desync_note : note;
  if (proxy_.config().access_log_all || !record.note.empty()) proxy_.accessLog().write(record);
}

}  // namespace stickyproxy
