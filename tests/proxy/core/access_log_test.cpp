#include "proxy/core/access_log.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "proxy/net/timer.h"
#include "tests/proxy/net/loop_test_support.h"

using namespace stickyproxy;

namespace {

std::string contents(FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  std::fseek(file, 0, SEEK_END);
  return text;
}

AccessRecord record(int status) {
  AccessRecord line;
  line.client = "192.0.2.1";
  line.method = "GET";
  line.path = "/ping";
  line.status = status;
  return line;
}

}  // namespace

TEST_CASE("access lines of one loop iteration leave together once its callbacks are done", "[access_log]") {
  testing::TestLoop loop;
  FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    auto log = AccessLog::create(loop.get(), file);
    std::string during;
    bool done = false;
    Timer timer(loop.get());
    timer.start(std::chrono::milliseconds(1), [&] {
      log->write(record(200));
      log->write(record(404));
      during = contents(file);  // nothing yet: still inside the iteration
      LoopContext::of(loop.get()).defer([&] { done = true; });
    });
    REQUIRE(loop.runUntil([&] { return done && contents(file).find("status=404") != std::string::npos; }));
    CHECK(during.empty());
    std::string text = contents(file);
    CHECK(text.find("status=200") < text.find("status=404"));

    // Past kFlushBytes a line goes out at once; the rest waits for the end of the iteration or
    // the log's destruction.
    std::string path(AccessLog::kFlushBytes, 'p');
    AccessRecord big = record(201);
    big.path = path;
    log->write(big);
    CHECK(contents(file).find("status=201") != std::string::npos);
    log->write(record(202));
    CHECK(contents(file).find("status=202") == std::string::npos);
  }
  CHECK(loop.close() == 0);
  CHECK(contents(file).find("status=202") != std::string::npos);
  std::fclose(file);
}
