#include "proxy/core/health_checker.h"

#include <memory>

#include "proxy/http/http_client.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

namespace {

// Lives until the probe's outcome is known: held by the callbacks it hands to the connection.
class Probe : public ClientExchangeHandler, public std::enable_shared_from_this<Probe> {
 public:
  Probe(uv_loop_t* loop, std::function<void(bool, const std::string&)> done)
      : deadline_(loop), done_(std::move(done)) {}

  void start(const Endpoint& endpoint, const std::string& path, std::chrono::milliseconds timeout, uv_loop_t* loop) {
    connection_ = ClientConnection::create(loop, endpoint);
    auto self = shared_from_this();
    deadline_.start(timeout, [self] { self->finish(false, "timed out"); });
    path_ = path;
    connection_->connect(timeout, [self](int status) {
      if (status != 0) {
        self->finish(false, "connect: " + uvErrorText(status));
        return;
      }
      if (self->finished_) return;
      RequestHead head;
      head.method = "GET";
      head.target = self->path_;
      head.headers.add("Host", "stickyproxy-health");
      head.headers.add("User-Agent", "stickyproxy-health-check");
      self->keep_ = self;  // the connection holds only a raw handler pointer
      self->connection_->startRequest(head, self.get(), std::chrono::milliseconds(0));
    });
  }

  void onResponseHead(ResponseHead&& head) override { status_ = head.status; }
  void onResponseBody(const Bytes&) override {}
  void onResponseComplete() override {
    bool healthy = status_ >= 200 && status_ < 400;
    finish(healthy, healthy ? "" : "status " + std::to_string(status_));
  }
  void onFailure(ClientFailure failure, int status) override {
    finish(false, std::string(clientFailureName(failure)) + (status != 0 ? ": " + uvErrorText(status) : ""));
  }

 private:
  void finish(bool healthy, const std::string& reason) {
    if (finished_) return;
    finished_ = true;
    auto self = shared_from_this();
    deadline_.stop();
    if (connection_) {
      connection_->detachHandler();
      connection_->close();
    }
    keep_.reset();
    auto done = std::move(done_);
    done(healthy, reason);
  }

  Timer deadline_;
  std::function<void(bool, const std::string&)> done_;
  ClientConnectionPtr connection_;
  std::shared_ptr<Probe> keep_;
  std::string path_;
  int status_ = 0;
  bool finished_ = false;
};

}  // namespace

void probeOnce(uv_loop_t* loop, const Endpoint& endpoint, const std::string& path,
               std::chrono::milliseconds timeout, std::function<void(bool healthy, const std::string& reason)> done) {
  auto probe = std::make_shared<Probe>(loop, std::move(done));
  probe->start(endpoint, path, timeout, loop);
}

}  // namespace stickyproxy
