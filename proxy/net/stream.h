// A connected byte stream (TCP or Unix socket) on a libuv loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/net/bytes.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/slab_pool.h"
#include "proxy/net/tls_session.h"

namespace stickyproxy {

class Stream;
using StreamPtr = std::shared_ptr<Stream>;

// Owns one uv_tcp_t or uv_pipe_t. The object keeps itself alive until uv_close's callback
// has run, so owners may drop their pointer right after close(). After close() the handler
// gets no further callbacks. Loop thread only.
class Stream : public std::enable_shared_from_this<Stream> {
 public:
  // Receives a stream's events. Callbacks may call close() or setHandler(nullptr).
  class Handler {
   public:
    // `data` views memory kept alive by its slab; keep the Bytes to keep the data.
    virtual void onStreamRead(const Bytes& data) = 0;
    // The peer finished sending (UV_EOF: reading stops, writing may go on), or a read or write
    // failed (a libuv error code: the stream is of no further use). Each at most once, and an
    // error may follow UV_EOF: a peer that closed entirely makes the next write fail, and that
    // failure must reach a handler that went on writing after the EOF.
    virtual void onStreamEnd(int status) = 0;
    // The write queue fell to the low-water mark after having been above the high-water mark.
    virtual void onStreamDrained() {}

    virtual ~Handler() = default;
  };

  static StreamPtr create(uv_loop_t* loop, Endpoint::Kind kind);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void setHandler(Handler* handler) { handler_ = handler; }
  // Accepts a pending connection of `server` into this stream. Returns a libuv error code.
  int acceptFrom(uv_stream_t* server);
  // Makes this accepted stream a TLS server: from now on the handler reads and writes
  // plaintext. A failed handshake or record ends the stream with UV_EPROTO (see tls()).
  // Writes before the handshake completes wait for it.
  void startTls(std::shared_ptr<TlsContext> context);
  bool secure() const { return tls_ != nullptr; }
  // The TLS session (failure reason, version), or nullptr for a plain stream.
  const TlsSession* tls() const { return tls_.get(); }
  // Connects to `endpoint`; `done` gets 0 or a libuv error code (UV_ECANCELED after close()).
  void connect(const Endpoint& endpoint, std::function<void(int status)> done);

  void startReading();
  void stopReading();
  bool reading() const { return reading_; }

  // Queues data for writing. Ignored after close().
  void write(Bytes data);
  void write(std::string text);
  void write(std::vector<Bytes> pieces);
  // `prefix`, then `body`, then `suffix`, in one system call when the socket takes them (a
  // response head with the first body bytes, a chunk with its framing). Any may be empty.
  void write(std::string prefix, Bytes body, std::string suffix);
  // The same, with `prefix` and `suffix` copied only when the kernel does not take them at once
  // (the caller keeps its buffers, e.g. one reused for every head it writes).
  void writeCopied(std::string_view prefix, Bytes body, std::string_view suffix);
  // Bytes queued but not yet handed to the kernel.
  size_t queuedBytes() const { return queued_bytes_; }
  // Above `high` the owner should stop producing; onStreamDrained fires when the queue is back
  // to `high / 4`.
  void setWriteHighWater(size_t high) { high_water_ = high; }
  bool overHighWater() const { return queued_bytes_ > high_water_; }
  // True from going over the high-water mark until onStreamDrained: while the owner waits to
  // produce again.
  bool awaitingDrain() const { return was_over_high_water_ && !closed_; }
  // Bytes libuv still has to hand to the kernel; unlike queuedBytes() it shrinks within a write
  // too, so it shows a slow reader's progress.
  size_t unsentBytes() const { return closed_ ? 0 : handle_.tcp.write_queue_size; }
  // A count that grows whenever the peer takes some of what was written: bytes its TCP
  // acknowledged (a reader that stops soon fills its receive buffer, and the count stops), or
  // for a Unix socket the bytes handed to the kernel.
  uint64_t deliveredBytes() const;

  // Half-closes the write side once queued writes are done. `done`, when given, runs then with 0
  // (every queued byte went to the kernel, and a FIN after them) or a libuv error code; it does
  // not run after close().
  void shutdownWrite(std::function<void(int status)> done = nullptr);
  // Idempotent. Pending writes complete with UV_ECANCELED and release their buffers.
  void close();
  bool closed() const { return closed_; }

  // The peer's address (TCP) or an Endpoint of kind kUnix.
  Endpoint peer() const;
  // The socket's descriptor, -1 once closed. Still owned by the stream.
  int fd() const;
  uv_stream_t* raw() { return reinterpret_cast<uv_stream_t*>(&handle_); }
  uv_loop_t* loop() const { return loop_; }

 private:
  struct WriteRequest;
  struct ConnectRequest;
  struct ShutdownRequest;
  Stream(uv_loop_t* loop, Endpoint::Kind kind);
  // Writes what the kernel takes of `buffers` at once, if nothing is queued; returns how much.
  size_t writeNow(const uv_buf_t* buffers, size_t count);
  // Queues the rest of a write (its text, then its pieces) behind what is queued.
  void queue(WriteRequest* request);
  // Writes `text` as it is (ciphertext on a TLS stream).
  void writeRaw(std::string text);
  // The TLS side of a read: decrypts `ciphertext` and hands the plaintext to the handler.
  void readTls(std::string_view ciphertext);
  // Encrypts `pieces` (or keeps them until the handshake is done) and writes the result.
  void writeTls(const std::vector<Bytes>& pieces);
  // Writes whatever the TLS session has for the peer.
  void flushTls();
  void end(int status);
  SlabPool* slabPool() const;
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* request, int status);
  static void onClose(uv_handle_t* handle);

  uv_loop_t* loop_;
  Endpoint::Kind kind_;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_;
  StreamPtr self_;  // set from creation until onClose: the handle's memory must outlive libuv's use
  Handler* handler_ = nullptr;
  SlabPtr read_slab_;  // between onAlloc and onRead only
  std::unique_ptr<TlsSession> tls_;
  SlabPtr plain_slab_;  // TLS: where decrypted bytes land
  size_t plain_offset_ = 0;
  std::vector<Bytes> tls_waiting_;  // plaintext written before the handshake completed
  size_t queued_bytes_ = 0;
  uint64_t raw_total_ = 0;  // bytes ever passed to queue()
  size_t high_water_ = 256 * 1024;
  bool was_over_high_water_ = false;
  bool reading_ = false;
  bool closed_ = false;
  bool ended_ = false;   // onStreamEnd was called (UV_EOF or an error)
  bool failed_ = false;  // ... with an error: nothing follows
};

// Libuv error code as text: "ECONNREFUSED (connection refused)".
std::string uvErrorText(int status);

}  // namespace stickyproxy
