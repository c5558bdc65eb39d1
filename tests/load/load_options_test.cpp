#include "load/load_options.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace stickyproxy::load;

namespace {

std::optional<LoadOptions> parse(std::vector<std::string> args, std::string* error) {
  std::string program = "stickyproxy-load";
  std::vector<char*> argv{program.data()};
  for (std::string& arg : args) argv.push_back(arg.data());
  return parseLoadOptions(static_cast<int>(argv.size()), argv.data(), error);
}

}  // namespace

TEST_CASE("load options: the defaults and every flag", "[load]") {
  std::string error;
  auto options = parse({"--target", "127.0.0.1:8080", "--data", "d"}, &error);
  REQUIRE(options);
  CHECK(options->users == 50);
  CHECK(options->target.port() == 8080);
  CHECK(options->gzip);
  CHECK_FALSE(options->find_capacity);
  options = parse({"--target", "[::1]:81", "--data", "d", "--chunked-data", "c", "--users", "500", "--duration",
                   "30.5", "--ramp", "2", "--think-min", "0", "--think-max", "0.5", "--seed", "9", "--timeout", "5",
                   "--proxy-pid", "42", "--no-gzip", "--proxy-cookie", "sp", "--json", "j", "--svg", "s",
                   "--find-capacity", "--step-users", "25", "--step-seconds", "20", "--max-users", "900",
                   "--goal-p99", "2", "--goal-cpu", "70"},
                  &error);
  REQUIRE(options);
  CHECK(options->users == 500);
  CHECK(options->duration == 30.5);
  CHECK(options->proxy_pid == 42);
  CHECK_FALSE(options->gzip);
  CHECK(options->find_capacity);
  CHECK(options->step_users == 25);
  CHECK(options->max_users == 900);
  CHECK(options->goal_cpu == 70);
}

TEST_CASE("load options: what is refused says why", "[load]") {
  std::string error;
  CHECK_FALSE(parse({"--data", "d"}, &error));
  CHECK(error == "--target is required");
  CHECK_FALSE(parse({"--target", "127.0.0.1:1"}, &error));
  CHECK(error == "--data is required");
  CHECK_FALSE(parse({"--target", "example.com:80", "--data", "d"}, &error));
  CHECK(error.find("--target") != std::string::npos);
  CHECK_FALSE(parse({"--target", "unix:/x", "--data", "d"}, &error));
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--users", "0"}, &error));
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--duration", "nan"}, &error));
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--think-min", "2", "--think-max", "1"}, &error));
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--find-capacity", "--ramp", "60"}, &error));
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--users"}, &error));
  CHECK(error.find("needs a value") != std::string::npos);
  CHECK_FALSE(parse({"--target", "127.0.0.1:1", "--data", "d", "--bogus", "1"}, &error));
  CHECK(error == "unknown option --bogus");
  CHECK_FALSE(parse({"--help"}, &error));
  CHECK(error.empty());
}
