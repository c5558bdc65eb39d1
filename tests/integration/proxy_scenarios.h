// Steps that several integration tests take: asking as a session, sending requests at once,
// reading the access log, checking JSON bodies and server-sent events.
//
// Unlike harness.h these are test steps, built into integration_tests: the ones that check
// what they get use Catch2 assertions and fail the calling test.
#pragma once

#include <chrono>
#include <map>
#include <picojson.h>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace stickyproxy::integration {

// GET `path` as the session `key` (its routing cookie).
Response asSession(HttpClient& client, const std::string& key, const std::string& path = "/whoami");

// Asks once as each of `keys`; each must answer 200. Returns key -> the worker that answered.
std::map<std::string, std::string> workerOfEach(HttpClient& client, const std::vector<std::string>& keys);

// True for a routing cookie value in the proxy's format: a 32-hex key, optionally a pinned
// worker and time, and a 32-hex MAC, joined by dots.
bool isSessionKey(const std::string& value);

// The time since `start`, in whole milliseconds.
std::chrono::milliseconds since(std::chrono::steady_clock::time_point start);

// How often `needle` stands in `text`, not overlapping.
size_t countOccurrences(const std::string& text, const std::string& needle);

// What one of concurrentRequests() saw.
struct Outcome {
  int status = 0;
  std::string worker;  // X-Worker
  bool retry_after = false;
  std::chrono::milliseconds took{0};
  std::string error;  // a HarnessError's message; empty when a response came
};

// Sends GET `path` as session `key` from `count` client connections at once, one thread each,
// and returns what each saw, in no particular order.
std::vector<Outcome> concurrentRequests(const ProxyUnderTest& proxy, const std::string& key, const std::string& path,
                                        int count);

// The access-log lines of requests for `path`, once there are at least `expected` of them (the
// proxy may write a line just after the client has its response), or whatever is there after 3 s.
std::vector<AccessLogLine> accessLinesFor(const ProxyUnderTest& proxy, const std::string& path, size_t expected);

// Asks again as each session of `now_on` (key -> worker it is on): each must answer 200 and
// without X-Seen-Previous-Worker. Returns how many answered from another worker than `now_on`
// says.
int sessionsElsewhere(HttpClient& client, const std::map<std::string, std::string>& now_on);

// `text` parsed as a JSON object; the calling test fails when it is not one.
picojson::object parseJsonObject(const std::string& text);

// Opens GET /sse?events=`events`&interval_ms=`interval_ms` on `client` and reads it to the end.
// Checks that it is an event stream whose events "event 0", "event 1", ... arrive one by one:
// the first and the last at least half the time apart that producing them took. Returns the
// response head for further checks.
Response checkEventsArriveAsProduced(HttpClient& client, int events, int interval_ms);

}  // namespace stickyproxy::integration
