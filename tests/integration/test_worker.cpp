// test-worker: a worker process for the integration tests, on the project's own HTTP stack.
//
//   test-worker --name w1 --listen unix:/path/w1.sock|127.0.0.1:PORT [--state-dir DIR]
//               [--header-timeout-ms N]
//
// Every response carries X-Worker: <name> and X-Worker-Pid: <pid>. Routes:
//   GET  /ping                      200 "pong"
//   GET  /whoami                    200 <name>, with X-Seen-* headers echoing what the request
//                                   carried (Previous-Worker, Forwarded-For/-Proto/-Host, Connection)
//   GET  /headers                   200, the request head's fields, one "name: value" per line
//   POST /echo                      the request body streamed back, chunked, with backpressure
//   POST /count                     {"bytes":N,"sha":"<FNV-1a 64 hex>"} of the streamed body
//   GET  /sse?events=N&interval_ms=M  text/event-stream, "data: event i\n\n" every M ms
//   GET  /delay?ms=N                200 after N ms
//   GET  /big?bytes=N[&type=T]      N bytes of the shared pattern, streamed with backpressure, as
//                                   Content-Type T (default application/octet-stream)
//   GET  /bad-framing               200 with a second, malformed Content-Length field (-> proxy 502)
//   GET  /abort                     the connection is closed with no answer; the process stays up
//   GET  /crash                     the process exits at once with status 3, no answer
//   GET  /exit-after?ms=N           200, then the process exits with status 0 after N ms
#include <uv.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backend/process/server_process.h"
#include "proxy/http/http_server.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/timer.h"
#include "tests/integration/body_pattern.h"

using namespace stickyproxy;
using stickyproxy::integration::Fnv1a64;

namespace {

constexpr size_t kBigPieceSize = 64 * 1024;

// The value of `key` in the query string of `target`, if present.
std::optional<std::string_view> queryValue(std::string_view target, std::string_view key) {
  size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t equals = pair.find('=');
    if (pair.substr(0, equals) == key) {
      return equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

uint64_t queryNumber(std::string_view target, std::string_view key, uint64_t fallback) {
  auto text = queryValue(target, key);
  if (!text) return fallback;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size()) return fallback;
  return value;
}

std::string headerOrEmpty(const RequestHead& request, std::string_view name) {
  const std::string* value = request.headers.find(name);
  return value != nullptr ? *value : std::string();
}

class WorkerApp;

// POST /echo: each body piece goes straight back out; the request is paused while the client
// is slower to read than to send.
class EchoHandler : public ExchangeHandler {
 public:
  explicit EchoHandler(ServerExchangePtr exchange) : exchange_(std::move(exchange)) {}
  void onRequestBody(const Bytes& data) override {
    exchange_->sendBody(data);
    if (exchange_->overHighWater()) exchange_->pauseRequestBody();
  }
  void onWritable() override { exchange_->resumeRequestBody(); }
  void onRequestComplete() override { exchange_->finish(); }

 private:
  ServerExchangePtr exchange_;
};

// POST /count: length and checksum of the body, which is never held.
class CountHandler : public ExchangeHandler {
 public:
  CountHandler(ServerExchangePtr exchange, HeaderList headers)
      : exchange_(std::move(exchange)), headers_(std::move(headers)) {}
  void onRequestBody(const Bytes& data) override {
    bytes_ += data.size;
    hash_.update(data.view());
  }
  void onRequestComplete() override {
    std::string body = "{\"bytes\":" + std::to_string(bytes_) + ",\"sha\":\"" + hash_.hex() + "\"}";
    exchange_->respond(200, "application/json", std::move(body), std::move(headers_));
  }

 private:
  ServerExchangePtr exchange_;
  HeaderList headers_;
  uint64_t bytes_ = 0;
  Fnv1a64 hash_;
};

// GET /sse: one event per timer tick, then the end of the response.
class SseHandler : public ExchangeHandler {
 public:
  SseHandler(uv_loop_t* loop, ServerExchangePtr exchange, uint64_t events)
      : exchange_(std::move(exchange)), timer_(loop), events_(events) {}
  void start(std::chrono::milliseconds interval) {
    if (events_ == 0) {
      exchange_->finish();
      return;
    }
    timer_.startRepeating(interval, [this] { tick(); });
  }
  void onAbort(const std::string&) override { timer_.stop(); }

 private:
  void tick() {
    exchange_->sendBody("data: event " + std::to_string(sent_) + "\n\n");
    if (++sent_ >= events_) {
      timer_.stop();
      exchange_->finish();  // drops this handler, deferred
    }
  }

  ServerExchangePtr exchange_;
  Timer timer_;
  uint64_t events_;
  uint64_t sent_ = 0;
};

// GET /delay: answers when the timer fires.
class DelayHandler : public ExchangeHandler {
 public:
  DelayHandler(uv_loop_t* loop, ServerExchangePtr exchange, HeaderList headers)
      : exchange_(std::move(exchange)), headers_(std::move(headers)), timer_(loop) {}
  void start(std::chrono::milliseconds delay) {
    timer_.start(delay, [this, delay] {
      exchange_->respond(200, "text/plain", "delayed " + std::to_string(delay.count()) + " ms\n", std::move(headers_));
    });
  }
  void onAbort(const std::string&) override { timer_.stop(); }

 private:
  ServerExchangePtr exchange_;
  HeaderList headers_;
  Timer timer_;
};

// GET /big: pattern pieces queued while the socket keeps up, resumed when it drains.
class BigHandler : public ExchangeHandler {
 public:
  BigHandler(ServerExchangePtr exchange, SlabPtr block, uint64_t total)
      : exchange_(std::move(exchange)), block_(std::move(block)), total_(total) {}
  void pump() {
    while (sent_ < total_ && exchange_->active() && !exchange_->overHighWater()) {
      size_t piece = static_cast<size_t>(std::min<uint64_t>(kBigPieceSize, total_ - sent_));
      // Pieces start at multiples of 64 KiB, where the pattern starts over.
      exchange_->sendBody(Bytes(block_, block_->data(), piece));
      sent_ += piece;
    }
    if (sent_ >= total_) exchange_->finish();
  }
  void onWritable() override { pump(); }

 private:
  ServerExchangePtr exchange_;
  SlabPtr block_;
  uint64_t total_;
  uint64_t sent_ = 0;
};

class WorkerApp {
 public:
  WorkerApp(uv_loop_t* loop, std::string name)
      : loop_(loop), name_(std::move(name)), pattern_block_(Slab::copyOf(integration::patternText(0, kBigPieceSize))) {}

  void handle(const ServerExchangePtr& exchange) {
    const RequestHead& request = exchange->request();
    std::string_view path = request.path();
    const std::string& method = request.method;
    if (path == "/ping") {
      exchange->respond(200, "text/plain", "pong\n", baseHeaders());
    } else if (path == "/whoami") {
      HeaderList headers = baseHeaders();
      headers.add("X-Seen-Previous-Worker", headerOrEmpty(request, "X-Sticky-Previous-Worker"));
      headers.add("X-Seen-Forwarded-For", headerOrEmpty(request, "X-Forwarded-For"));
      headers.add("X-Seen-Forwarded-Proto", headerOrEmpty(request, "X-Forwarded-Proto"));
      headers.add("X-Seen-Forwarded-Host", headerOrEmpty(request, "X-Forwarded-Host"));
      headers.add("X-Seen-Connection", headerOrEmpty(request, "Connection"));
      exchange->respond(200, "text/plain", name_, std::move(headers));
    } else if (path == "/headers") {
      std::string body;
      for (const Header& field : request.headers.fields()) body += field.name + ": " + field.value + "\n";
      exchange->respond(200, "text/plain", std::move(body), baseHeaders());
    } else if (path == "/echo" && method == "POST") {
      startStreamingResponse(exchange, "application/octet-stream");
      exchange->setHandler(std::make_shared<EchoHandler>(exchange));
      if (exchange->requestComplete()) exchange->finish();
    } else if (path == "/count" && method == "POST") {
      auto handler = std::make_shared<CountHandler>(exchange, baseHeaders());
      exchange->setHandler(handler);
      if (exchange->requestComplete()) handler->onRequestComplete();
    } else if (path == "/sse") {
      startStreamingResponse(exchange, "text/event-stream");
      auto handler = std::make_shared<SseHandler>(loop_, exchange, queryNumber(request.target, "events", 5));
      exchange->setHandler(handler);
      handler->start(std::chrono::milliseconds(queryNumber(request.target, "interval_ms", 100)));
    } else if (path == "/delay") {
      auto handler = std::make_shared<DelayHandler>(loop_, exchange, baseHeaders());
      exchange->setHandler(handler);
      handler->start(std::chrono::milliseconds(queryNumber(request.target, "ms", 100)));
    } else if (path == "/big") {
      uint64_t total = queryNumber(request.target, "bytes", 0);
      ResponseHead head;
      head.headers = baseHeaders();
      auto type = queryValue(request.target, "type");
      head.headers.add("Content-Type", type ? std::string(*type) : "application/octet-stream");
      exchange->sendHead(std::move(head), total);
      auto handler = std::make_shared<BigHandler>(exchange, pattern_block_, total);
      exchange->setHandler(handler);
      handler->pump();
    } else if (path == "/bad-framing") {
      // A second length under a name with a space before its colon: lenient parsers read the
      // body as 20 bytes, strict ones refuse the head. The proxy must answer 502.
      HeaderList headers = baseHeaders();
      headers.add("Content-Length ", "20");
      exchange->respond(200, "text/plain", "hi", std::move(headers));
    } else if (path == "/abort") {
      // Drops the connection without an answer and stays up: the proxy's 502 path.
      exchange->abort();
    } else if (path == "/crash") {
      std::fprintf(stderr, "test-worker %s: /crash requested, exiting with status 3\n", name_.c_str());
      _exit(3);
    } else if (path == "/exit-after") {
      auto delay = std::chrono::milliseconds(queryNumber(request.target, "ms", 100));
      exchange->respond(200, "text/plain", "exiting in " + std::to_string(delay.count()) + " ms\n", baseHeaders());
      if (!exit_timer_) {
        exit_timer_ = std::make_unique<Timer>(loop_);
        exit_timer_->start(delay, [this] {
          std::fprintf(stderr, "test-worker %s: /exit-after elapsed, exiting with status 0\n", name_.c_str());
          _exit(0);
        });
      }
    } else {
      exchange->respond(404, "text/plain", "not found\n", baseHeaders());
    }
  }

 private:
  HeaderList baseHeaders() const {
    HeaderList headers;
    headers.add("X-Worker", name_);
    headers.add("X-Worker-Pid", std::to_string(getpid()));
    return headers;
  }

  void startStreamingResponse(const ServerExchangePtr& exchange, std::string content_type) {
    ResponseHead head;
    head.headers = baseHeaders();
    head.headers.add("Content-Type", std::move(content_type));
    head.headers.add("Cache-Control", "no-store");
    exchange->sendHead(std::move(head), std::nullopt);
  }

  uv_loop_t* loop_;
  std::string name_;
  SlabPtr pattern_block_;
  std::unique_ptr<Timer> exit_timer_;
};

}  // namespace

int main(int argc, char** argv) {
  backend::ServerProcessOptions options;
  int exit_code = 0;
  if (!backend::parseServerProcessArgs(argc, argv, "test-worker", &options, &exit_code)) return exit_code;
  auto make_app = [](uv_loop_t* loop, const backend::ServerProcessOptions& process) {
    auto app = std::make_shared<WorkerApp>(loop, process.name);
    return [app](const ServerExchangePtr& exchange) { app->handle(exchange); };
  };
  return backend::runServerProcess(options, "test-worker", make_app);
}
