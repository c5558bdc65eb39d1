#include "proxy/net/stream.h"

#include <cstring>

#include "proxy/net/loop_context.h"
#include "proxy/net/tcp_info.h"

namespace stickyproxy {

namespace {
// A read gets a fresh slab when less than this is left in the current one.
constexpr size_t kMinReadSpace = 4 * 1024;

// Runs `call` on the next loop iteration, from a one-shot timer that frees itself: outcomes that
// are known at once still reach their callback through the loop, never from inside the call
// that started the operation.
void callSoon(uv_loop_t* loop, std::function<void()> call) {
  auto* timer = new uv_timer_t;
  uv_timer_init(loop, timer);
  timer->data = new std::function<void()>(std::move(call));
  uv_timer_start(timer, [](uv_timer_t* handle) {
    std::unique_ptr<std::function<void()>> pending(static_cast<std::function<void()>*>(handle->data));
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* closed) { delete reinterpret_cast<uv_timer_t*>(closed); });
    (*pending)();
  }, 0, 0);
}
}  // namespace

struct Stream::WriteRequest {
  uv_write_t request;
  std::string text;           // written from text_offset, before the pieces
  size_t text_offset = 0;
  std::vector<Bytes> pieces;  // keep the written memory alive until the callback
  std::string tail;           // written after the pieces
  size_t size = 0;
};

struct Stream::ConnectRequest {
  uv_connect_t request;
  std::function<void(int)> done;
  StreamPtr stream;
};

StreamPtr Stream::create(uv_loop_t* loop, Endpoint::Kind kind) {
  StreamPtr stream(new Stream(loop, kind));
  stream->self_ = stream;
  return stream;
}

Stream::Stream(uv_loop_t* loop, Endpoint::Kind kind) : loop_(loop), kind_(kind) {
  if (kind_ == Endpoint::Kind::kTcp) {
    uv_tcp_init(loop, &handle_.tcp);
  } else {
    uv_pipe_init(loop, &handle_.pipe, 0);
  }
  handle_.tcp.data = this;
}

Stream::~Stream() = default;

int Stream::acceptFrom(uv_stream_t* server) {
  int status = uv_accept(server, raw());
  if (status == 0 && kind_ == Endpoint::Kind::kTcp) uv_tcp_nodelay(&handle_.tcp, 1);
  return status;
}

void Stream::startTls(std::shared_ptr<TlsContext> context) {
  tls_ = std::make_unique<TlsSession>(std::move(context));
}

void Stream::connect(const Endpoint& endpoint, std::function<void(int status)> done) {
  auto* request = new ConnectRequest;
  request->done = std::move(done);
  request->stream = shared_from_this();
  request->request.data = request;
  auto on_connect = [](uv_connect_t* raw_request, int status) {
    auto* connect_request = static_cast<ConnectRequest*>(raw_request->data);
    std::unique_ptr<ConnectRequest> owned(connect_request);
    if (connect_request->stream->closed_ && status == 0) status = UV_ECANCELED;
    if (status == 0 && connect_request->stream->kind_ == Endpoint::Kind::kTcp) {
      uv_tcp_nodelay(&connect_request->stream->handle_.tcp, 1);
    }
    connect_request->done(status);
  };
  int status;
  if (endpoint.kind == Endpoint::Kind::kTcp) {
    status = uv_tcp_connect(&request->request, &handle_.tcp, endpoint.sockaddrPtr(), on_connect);
  } else {
    // uv_pipe_connect reports failures through the callback.
    uv_pipe_connect(&request->request, &handle_.pipe, endpoint.path.c_str(), on_connect);
    status = 0;
  }
  if (status != 0) {
    // Fail through the loop like every other connect outcome, never from inside connect().
    std::shared_ptr<ConnectRequest> failed(request);
    callSoon(loop_, [failed, status] { failed->done(status); });
  }
}

void Stream::startReading() {
  if (closed_ || reading_ || ended_) return;
  if (uv_read_start(raw(), &Stream::onAlloc, &Stream::onRead) == 0) reading_ = true;
}

void Stream::stopReading() {
  if (closed_ || !reading_) return;
  uv_read_stop(raw());
  reading_ = false;
}

SlabPool* Stream::slabPool() const {
  // Null once the loop's context has closed (only stragglers read then).
  return loop_->data != nullptr ? &LoopContext::of(loop_).slabs() : nullptr;
}

void Stream::onAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<Stream*>(handle->data);
  if (!self->read_slab_) {
    SlabPool* pool = self->slabPool();
    self->read_slab_ = pool != nullptr ? pool->take() : Slab::make();
  }
  buf->base = self->read_slab_->data();
  buf->len = self->read_slab_->capacity();
}

void Stream::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Stream*>(stream->data);
  // Between reads a stream holds no slab: it goes back to the pool, to be reused once the views
  // this read hands out (queued writes, pipelined input) are gone.
  // (The pool, not the stream: the handler may destroy the stream.)
  struct GiveBack {
    SlabPool* pool;
    SlabPtr slab;
    ~GiveBack() {
      if (pool != nullptr) pool->giveBack(std::move(slab));
    }
  } lent{self->slabPool(), std::move(self->read_slab_)};
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    self->end(static_cast<int>(nread));
    return;
  }
  // Keep the stream alive while the handler runs: it may close() and drop its pointer.
  StreamPtr keep = self->shared_from_this();
  if (self->tls_) {
    // The session copies the ciphertext.
    self->readTls(std::string_view(buf->base, static_cast<size_t>(nread)));
    return;
  }
  Bytes data(lent.slab, buf->base, static_cast<size_t>(nread));
  if (self->handler_ != nullptr && !self->closed_) self->handler_->onStreamRead(data);
}

void Stream::readTls(std::string_view ciphertext) {
  bool was_established = tls_->established();
  tls_->receive(ciphertext);
  if (!was_established && tls_->established() && !tls_waiting_.empty()) {
    std::vector<Bytes> waiting;
    waiting.swap(tls_waiting_);
    writeTls(waiting);
  }
  while (!closed_ && tls_->established() && !tls_->failed()) {
    if (!plain_slab_ || plain_slab_->capacity() - plain_offset_ < kMinReadSpace) {
      plain_slab_ = Slab::make();
      plain_offset_ = 0;
    }
    char* space = plain_slab_->data() + plain_offset_;
    long length = tls_->readPlain(space, plain_slab_->capacity() - plain_offset_);
    if (length <= 0) break;
    plain_offset_ += static_cast<size_t>(length);
    if (handler_ != nullptr) handler_->onStreamRead(Bytes(plain_slab_, space, static_cast<size_t>(length)));
  }
  if (closed_) return;
  flushTls();
  if (tls_->failed()) {
    end(UV_EPROTO);
  } else if (tls_->peerClosed()) {
    end(UV_EOF);
  }
}

void Stream::writeTls(const std::vector<Bytes>& pieces) {
  if (!tls_->established()) {
    if (!tls_->failed()) tls_waiting_.insert(tls_waiting_.end(), pieces.begin(), pieces.end());
    return;
  }
  for (const Bytes& piece : pieces) {
    if (!tls_->send(piece.view())) break;
  }
  flushTls();
}

void Stream::flushTls() {
  std::string out;
  tls_->takeOutput(out);
  if (!out.empty()) writeRaw(std::move(out));
}

void Stream::end(int status) {
  const bool error = status != UV_EOF;
  if (failed_ || (ended_ && !error)) return;
  ended_ = true;
  failed_ = error;
  if (reading_) {
    uv_read_stop(raw());
    reading_ = false;
  }
  StreamPtr keep = shared_from_this();
  if (handler_ != nullptr && !closed_) handler_->onStreamEnd(status);
}

void Stream::write(Bytes data) {
  if (closed_ || data.empty()) return;
  if (tls_) {
    writeTls({std::move(data)});
    return;
  }
  uv_buf_t buffer = uv_buf_init(const_cast<char*>(data.data), static_cast<unsigned>(data.size));
  size_t taken = writeNow(&buffer, 1);
  if (taken == data.size) return;
  auto* request = new WriteRequest;
  request->pieces.push_back(data.suffix(taken));
  queue(request);
}

void Stream::write(std::string text) {
  if (closed_ || text.empty()) return;
  if (tls_) {
    writeTls({Bytes::copyOf(text)});
    return;
  }
  writeRaw(std::move(text));
}

void Stream::write(std::string prefix, Bytes body, std::string suffix) {
  // Only what the kernel does not take at once is copied: rarely more than a head's tail.
  writeCopied(prefix, std::move(body), suffix);
}

void Stream::writeCopied(std::string_view prefix, Bytes body, std::string_view suffix) {
  if (closed_) return;
  if (tls_) {
    std::vector<Bytes> pieces;
    if (!prefix.empty()) pieces.push_back(Bytes::copyOf(prefix));
    if (!body.empty()) pieces.push_back(std::move(body));
    if (!suffix.empty()) pieces.push_back(Bytes::copyOf(suffix));
    writeTls(pieces);
    return;
  }
  uv_buf_t buffers[3];
  size_t count = 0;
  if (!prefix.empty()) buffers[count++] = uv_buf_init(const_cast<char*>(prefix.data()), static_cast<unsigned>(prefix.size()));
  if (!body.empty()) buffers[count++] = uv_buf_init(const_cast<char*>(body.data), static_cast<unsigned>(body.size));
  if (!suffix.empty()) buffers[count++] = uv_buf_init(const_cast<char*>(suffix.data()), static_cast<unsigned>(suffix.size()));
  if (count == 0) return;
  size_t taken = writeNow(buffers, count);
  if (taken == prefix.size() + body.size + suffix.size()) return;
  auto* request = new WriteRequest;
  size_t from_prefix = std::min(taken, prefix.size());
  taken -= from_prefix;
  if (from_prefix < prefix.size()) request->text.assign(prefix.substr(from_prefix));
  size_t from_body = std::min(taken, body.size);
  taken -= from_body;
  if (from_body < body.size) request->pieces.push_back(body.suffix(from_body));
  request->tail.assign(suffix.substr(taken));
  queue(request);
}

void Stream::writeRaw(std::string text) {
  if (closed_ || text.empty()) return;
  uv_buf_t buffer = uv_buf_init(text.data(), static_cast<unsigned>(text.size()));
  size_t taken = writeNow(&buffer, 1);
  if (taken == text.size()) return;
  auto* request = new WriteRequest;
  request->text = std::move(text);
  request->text_offset = taken;
  queue(request);
}

void Stream::write(std::vector<Bytes> pieces) {
  if (closed_) return;
  if (tls_) {
    writeTls(pieces);
    return;
  }
  std::erase_if(pieces, [](const Bytes& piece) { return piece.empty(); });
  if (pieces.empty()) return;
  constexpr size_t kOnStack = 8;
  uv_buf_t on_stack[kOnStack];
  std::vector<uv_buf_t> on_heap;
  uv_buf_t* buffers = on_stack;
  if (pieces.size() > kOnStack) {
    on_heap.resize(pieces.size());
    buffers = on_heap.data();
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    buffers[i] = uv_buf_init(const_cast<char*>(pieces[i].data), static_cast<unsigned>(pieces[i].size));
  }
  size_t taken = writeNow(buffers, pieces.size());
  size_t first = 0;
  while (first < pieces.size() && taken >= pieces[first].size) taken -= pieces[first++].size;
  if (first == pieces.size()) return;
  pieces.erase(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(first));
  pieces.front() = pieces.front().suffix(taken);
  auto* request = new WriteRequest;
  request->pieces = std::move(pieces);
  queue(request);
}

int Stream::fd() const {
  uv_os_fd_t fd = -1;
  if (closed_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&handle_), &fd) != 0) return -1;
  return fd;
}

uint64_t Stream::deliveredBytes() const {
  if (closed_) return raw_total_;
  uv_os_fd_t fd;
  if (kind_ == Endpoint::Kind::kTcp && uv_fileno(reinterpret_cast<const uv_handle_t*>(&handle_), &fd) == 0) {
    if (std::optional<uint64_t> acked = tcpBytesAcked(fd)) return *acked;
  }
  return raw_total_ - handle_.tcp.write_queue_size;
}

size_t Stream::writeNow(const uv_buf_t* buffers, size_t count) {
  // Nothing waiting: hand the bytes to the kernel now. What it takes needs no write request,
  // no callback and no change to the poll set (libuv would otherwise re-arm the descriptor
  // after every write); only the rest is queued. Errors show through the queued write.
  for (size_t i = 0; i < count; ++i) raw_total_ += buffers[i].len;
  if (raw()->write_queue_size != 0) return 0;
  int written = uv_try_write(raw(), buffers, static_cast<unsigned>(count));
  return written > 0 ? static_cast<size_t>(written) : 0;
}

void Stream::queue(WriteRequest* request) {
  std::vector<uv_buf_t> buffers;
  if (!request->text.empty()) {
    buffers.push_back(uv_buf_init(request->text.data() + request->text_offset,
                                  static_cast<unsigned>(request->text.size() - request->text_offset)));
  }
  for (const Bytes& piece : request->pieces) {
    buffers.push_back(uv_buf_init(const_cast<char*>(piece.data), static_cast<unsigned>(piece.size)));
  }
  if (!request->tail.empty()) {
    buffers.push_back(uv_buf_init(request->tail.data(), static_cast<unsigned>(request->tail.size())));
  }
  for (const uv_buf_t& buffer : buffers) request->size += buffer.len;
  request->request.data = request;
  int status = uv_write(&request->request, raw(), buffers.data(), static_cast<unsigned>(buffers.size()),
                        &Stream::onWrite);
  if (status != 0) {
    delete request;
    end(status);
    return;
  }
  queued_bytes_ += request->size;
  if (queued_bytes_ > high_water_) was_over_high_water_ = true;
}

void Stream::onWrite(uv_write_t* raw_request, int status) {
  std::unique_ptr<WriteRequest> request(static_cast<WriteRequest*>(raw_request->data));
  auto* self = static_cast<Stream*>(raw_request->handle->data);
  self->queued_bytes_ -= request->size;
  if (status == UV_ECANCELED || self->closed_) return;
  if (status < 0) {
    self->end(status);
    return;
  }
  if (self->was_over_high_water_ && self->queued_bytes_ <= self->high_water_ / 4) {
    self->was_over_high_water_ = false;
    StreamPtr keep = self->shared_from_this();
    if (self->handler_ != nullptr) self->handler_->onStreamDrained();
  }
}

struct Stream::ShutdownRequest {
  uv_shutdown_t request;
  std::function<void(int)> done;
};

void Stream::shutdownWrite(std::function<void(int status)> done) {
  if (closed_) return;
  if (tls_) {
    tls_->shutdown();  // close_notify before the FIN
    flushTls();
  }
  auto* request = new ShutdownRequest;
  request->done = std::move(done);
  request->request.data = request;
  auto on_shutdown = [](uv_shutdown_t* raw_request, int status) {
    std::unique_ptr<ShutdownRequest> finished(static_cast<ShutdownRequest*>(raw_request->data));
    auto* self = static_cast<Stream*>(raw_request->handle->data);
    if (self->closed_ || !finished->done) return;
    StreamPtr keep = self->shared_from_this();
    finished->done(status);
  };
  int status = uv_shutdown(&request->request, raw(), on_shutdown);
  if (status == 0) return;
  // Already shut down, or the socket is gone: say so through the loop, never from in here.
  std::unique_ptr<ShutdownRequest> failed(request);
  if (!failed->done) return;
  std::weak_ptr<Stream> weak = shared_from_this();
  callSoon(loop_, [weak, done = std::move(failed->done), status] {
    auto self = weak.lock();
    if (self && !self->closed_) done(status);
  });
}

void Stream::close() {
  if (closed_) return;
  closed_ = true;
  handler_ = nullptr;
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &Stream::onClose);
}

void Stream::onClose(uv_handle_t* handle) {
  auto* self = static_cast<Stream*>(handle->data);
  self->read_slab_.reset();
  StreamPtr last = std::move(self->self_);  // may destroy the stream when this scope ends
}

Endpoint Stream::peer() const {
  if (kind_ == Endpoint::Kind::kUnix) return Endpoint::unixPath("");
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  return Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&address));
}

std::string uvErrorText(int status) {
  return std::string(uv_err_name(status)) + " (" + uv_strerror(status) + ")";
}

}  // namespace stickyproxy
