// The unit tests' main: Catch2's, with SIGPIPE ignored as stickyproxy and its workers do, so that
// a write to a peer that went away fails with EPIPE instead of ending the test run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

int main(int argc, char* argv[]) {
  std::signal(SIGPIPE, SIG_IGN);
  return Catch::Session().run(argc, argv);
}
