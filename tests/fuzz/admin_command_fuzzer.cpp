// Fuzz target "admin_command": lines sent to the admin socket, run by AdminCommands::execute()
// (proxy/admin/admin_commands.h) against the unit tests' FakeWorkerControl
// (tests/proxy/admin/fake_worker_control.h) with two workers and a few sessions.
//
// Input: the bytes a client sends; cut into lines at LF, a trailing CR and blank lines dropped, as
// AdminServer does.
//
// Invariants: every line gets exactly one answer; a human answer is printable ASCII and newlines
// (untrusted words are sanitised before they are echoed); a JSON answer (last word "json") is one
// JSON object with a boolean "ok", and an "error" string when not ok; and the same line asked for
// in words fails ("error:"/"timeout:") exactly when its JSON form says "ok": false.
#include <picojson.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/admin/admin_commands.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/proxy/admin/fake_worker_control.h"
#include "tests/proxy/net/loop_test_support.h"

namespace stickyproxy::fuzz {
namespace {

// w1 (ready) and w2 (down) with a session each and one moved from w2 to w1.
struct Fixture {
  Fixture() {
    const auto now = std::chrono::system_clock::now();
    control.table().touch(1, "w1", now);
    control.table().touch(2, "w2", now);
    control.table().move(3, "w2", "w1", now);
  }
  // Back to the start: every command sees the same workers.
  void reset() {
    control.draining = false;
    control.findWorker("w1")->setState(WorkerState::kReady);
    control.findWorker("w2")->setState(WorkerState::kDown);
  }
  testing::TestLoop loop;
  testing::FakeWorkerControl control{loop.get(), {"w1", "w2"}, "/etc/stickyproxy/fuzz.conf"};
  AdminCommands commands{control};
};

Fixture& fixture() {
  static Fixture* instance = new Fixture;  // lives until exit, with its loop
  return *instance;
}

// The one answer to `line`, from a fresh fake.
std::string ask(const std::string& line) {
  Fixture& f = fixture();
  f.reset();
  int answers = 0;
  std::string answer;
  {
    QuietStderr quiet;  // every command logs a line
    f.commands.execute(line, [&](const std::string& text) {
      ++answers;
      answer = text;
    });
  }
  FUZZ_CHECK(answers == 1, std::to_string(answers) + " answers to \"" + line + "\"");
  return answer;
}

void checkLine(const std::string& line) {
  const auto words = splitAdminWords(line);
  const bool as_json = !words.empty() && words.back() == "json";
  const std::string answer = ask(line);
  if (!as_json) {
    FUZZ_CHECK(!answer.empty(), "an empty answer to \"" + line + "\"");
    for (char c : answer) {
      FUZZ_CHECK(c == '\n' || (c >= 0x20 && c < 0x7f), "unprintable byte in the answer: " + answer);
    }
  }
  const std::string json_line = as_json ? line : line + " json";
  const std::string json_answer = as_json ? answer : ask(json_line);
  picojson::value value;
  const std::string error = picojson::parse(value, json_answer);
  FUZZ_CHECK(error.empty() && value.is<picojson::object>(), "not a JSON object: " + json_answer);
  const picojson::object& object = value.get<picojson::object>();
  auto ok = object.find("ok");
  FUZZ_CHECK(ok != object.end() && ok->second.is<bool>(), "no boolean \"ok\": " + json_answer);
  if (!ok->second.get<bool>()) {
    auto message = object.find("error");
    FUZZ_CHECK(message != object.end() && message->second.is<std::string>(), "no \"error\": " + json_answer);
  }
  if (!as_json) {
    const bool failed = answer.starts_with("error:") || answer.starts_with("timeout:");
    FUZZ_CHECK(failed == !ok->second.get<bool>(), "\"" + line + "\" answers\n" + answer + "\nand in JSON\n" + json_answer);
  }
}

}  // namespace
}  // namespace stickyproxy::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    const size_t end = input.find('\n');
    std::string line(input.substr(0, end));
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    stickyproxy::fuzz::checkLine(line);
  }
  return 0;
}
