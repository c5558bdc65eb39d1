#include "tests/integration/proxy_scenarios.h"

#include <catch2/catch.hpp>
#include <latch>
#include <regex>
#include <thread>

namespace stickyproxy::integration {

Response asSession(HttpClient& client, const std::string& key, const std::string& path) {
  return client.get(path, {{"Cookie", kCookieName + "=" + key}});
}

std::map<std::string, std::string> workerOfEach(HttpClient& client, const std::vector<std::string>& keys) {
  std::map<std::string, std::string> worker_of;
  for (const std::string& key : keys) {
    Response response = asSession(client, key);
    REQUIRE(response.status == 200);
    worker_of[key] = response.body;
  }
  return worker_of;
}

bool isSessionKey(const std::string& value) {
  return std::regex_match(value, std::regex("[0-9a-f]{32}(\\.[A-Za-z0-9_-]{1,32}\\.[0-9a-f]{1,16})?\\.[0-9a-f]{32}"));
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

size_t countOccurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

std::vector<Outcome> concurrentRequests(const ProxyUnderTest& proxy, const std::string& key, const std::string& path,
                                        int count) {
  std::vector<Outcome> outcomes(static_cast<size_t>(count));
  std::latch go(count);
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      Outcome& outcome = outcomes[static_cast<size_t>(i)];
      HttpClient client = proxy.client(10s);
      go.arrive_and_wait();
      const auto sent = std::chrono::steady_clock::now();
      try {
        Response response = asSession(client, key, path);
        outcome.status = response.status;
        outcome.worker = response.headerOr("X-Worker");
        outcome.retry_after = response.header("Retry-After").has_value();
      } catch (const HarnessError& error) {
        outcome.error = error.what();
      }
      outcome.took = since(sent);
    });
  }
  for (std::thread& thread : threads) thread.join();
  return outcomes;
}

std::vector<AccessLogLine> accessLinesFor(const ProxyUnderTest& proxy, const std::string& path, size_t expected) {
  std::vector<AccessLogLine> selected;
  waitUntil(
      [&] {
        selected.clear();
        for (AccessLogLine& line : parseAccessLog(proxy.logText())) {
          if (line.path == path) selected.push_back(std::move(line));
        }
        return selected.size() >= expected;
      },
      3s);
  return selected;
}

int sessionsElsewhere(HttpClient& client, const std::map<std::string, std::string>& now_on) {
  int elsewhere = 0;
  for (const auto& [key, worker] : now_on) {
    Response response = asSession(client, key);
    REQUIRE(response.status == 200);
    if (response.body != worker) ++elsewhere;
    CHECK(response.headerOr("X-Seen-Previous-Worker") == "");
  }
  return elsewhere;
}

picojson::object parseJsonObject(const std::string& text) {
  picojson::value value;
  std::string error = picojson::parse(value, text);
  INFO("body: " << text);
  REQUIRE(error.empty());
  REQUIRE(value.is<picojson::object>());
  return value.get<picojson::object>();
}

Response checkEventsArriveAsProduced(HttpClient& client, int events, int interval_ms) {
  Response head = client.startStream("GET", "/sse?events=" + std::to_string(events) +
                                                "&interval_ms=" + std::to_string(interval_ms));
  REQUIRE(head.status == 200);
  CHECK(head.headerOr("Content-Type") == "text/event-stream");
  std::vector<SseEvent> received;
  while (auto event = client.nextEvent()) received.push_back(*event);
  REQUIRE(received.size() == static_cast<size_t>(events));
  for (int i = 0; i < events; ++i) CHECK(received[static_cast<size_t>(i)].data == "event " + std::to_string(i));
  auto spread = std::chrono::duration_cast<std::chrono::milliseconds>(received.back().arrived - received.front().arrived);
  INFO("first to last event: " << spread.count() << " ms");
  CHECK(spread.count() >= (events - 1) * interval_ms / 2);
  return head;
}

}  // namespace stickyproxy::integration
