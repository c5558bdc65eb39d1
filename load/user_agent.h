// One simulated browser's HTTP: a keep-alive connection to the target, its cookie jar, and one
// request at a time, on the project's own client (proxy/http/http_client.h).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "load/cookie_jar.h"
#include "proxy/http/http_client.h"
#include "proxy/net/bytes.h"
#include "proxy/net/endpoint.h"

namespace stickyproxy::load {

struct AgentRequest {
  std::string method = "GET";
  std::string target;
  std::string content_type;
  std::string accept = "application/json";
  std::vector<Bytes> body;  // sent in order; shared slabs, never copied
};

struct AgentResponse {
  int status = 0;
  ResponseHead head;
  std::string body;          // decoded when it came gzip-encoded
  size_t wire_bytes = 0;     // body bytes as they crossed the network
  double first_byte = 0;     // seconds from sending to the first body byte (or the head)
  double total = 0;          // seconds from sending to the whole answer
  std::string failure;       // empty when the whole answer came
  bool resent = false;       // sent again on a new connection after a kept-alive one was closed

  const std::string* header(std::string_view name) const { return head.headers.find(name); }
};

// Not thread-safe: loop thread only. `done` runs from a deferred task, never inside send().
class UserAgent : public ClientExchangeHandler {
 public:
  struct Settings {
    Endpoint target;
    std::string host_header;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds response_timeout{60000};
    std::chrono::milliseconds reconnect_after_idle{60000};  // below the proxy's keep-alive, as browsers do
    bool accept_gzip = true;
  };

  UserAgent(uv_loop_t* loop, Settings settings);
  ~UserAgent() override;
  UserAgent(const UserAgent&) = delete;
  UserAgent& operator=(const UserAgent&) = delete;

  // Sends `request` with the jar's cookies; Set-Cookie fields of the answer go into the jar.
  // One request at a time.
  void send(AgentRequest request, std::function<void(AgentResponse&&)> done);
  bool busy() const { return static_cast<bool>(done_); }
  CookieJar& cookies() { return jar_; }
  // Drops the connection (the next request opens a new one).
  void close();
  uint64_t connectionsOpened() const { return connections_opened_; }

  // --- ClientExchangeHandler ---
  void onResponseHead(ResponseHead&& head) override;
  void onResponseBody(const Bytes& data) override;
  void onResponseComplete() override;
  void onFailure(ClientFailure failure, int status) override;

 private:
  void start(bool fresh_connection);
  void writeRequest();
  void finish(std::string failure);
  double elapsed() const;

  uv_loop_t* loop_;
  Settings settings_;
  CookieJar jar_;
  ClientConnectionPtr connection_;
  bool connection_reused_ = false;
  std::chrono::steady_clock::time_point last_used_;
  AgentRequest request_;
  AgentResponse response_;
  std::function<void(AgentResponse&&)> done_;
  std::chrono::steady_clock::time_point sent_at_;
  bool got_body_byte_ = false;
  bool gzipped_ = false;
  std::string compressed_;
  uint64_t connections_opened_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace stickyproxy::load
