// Helpers shared by the libFuzzer targets of tests/fuzz: a scratch directory per process, file
// writing, reproducible piece sizes for feeding a stream in splits, and the check that turns a
// violated invariant into a finding.
//
// A target reports a finding only for a crash, a sanitizer report, a timeout or a violated
// invariant (FUZZ_CHECK); input that is merely invalid must be rejected quietly by the code
// under test.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// From the sanitizer runtime, when there is one (weak: a fuzz build without ASan links too).
extern "C" __attribute__((weak)) void __sanitizer_set_report_fd(void* fd);

namespace stickyproxy::fuzz {

// Aborts with `what` when `condition` is false: libFuzzer saves the input as a crash.
#define FUZZ_CHECK(condition, what)                                                         \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      std::fprintf(stderr, "invariant violated at %s:%d: %s\n  (%s)\n", __FILE__, __LINE__, \
                   #condition, std::string(what).c_str());                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (false)

// True when STICKYPROXY_FUZZ_STRICT is set (to anything but 0): the targets then also report the
// known findings they otherwise tolerate (see tests/fuzz/findings/README.md), so that those
// reproducers fail until the code is fixed.
inline bool strict() {
  static const bool value = [] {
    const char* text = std::getenv("STICKYPROXY_FUZZ_STRICT");
    return text != nullptr && *text != '\0' && std::string_view(text) != "0";
  }();
  return value;
}

// A directory of its own for this process (under $TMPDIR or /tmp), removed at exit. Several
// fuzzers (and several jobs of one fuzzer) may run at once: each gets its own.
inline const std::string& scratchDir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/stickyproxy-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string removed_at_exit;
    removed_at_exit = pattern;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(removed_at_exit, ignored);
    });
    return pattern;
  }();
  return dir;
}

// Writes `data` to `path`, replacing it; aborts if the scratch directory is unusable (that is
// the harness failing, not the code under test).
inline void writeFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

// Empties directory `path` (creating it if needed).
inline void resetDir(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
  std::filesystem::create_directories(path);
}

// Sends stderr to /dev/null while it lives, for code that logs a line per input (logInfo,
// logError), which would grow a long run's log by gigabytes. Sanitizer reports still reach the real stderr (or the files
// of ASAN_OPTIONS/UBSAN_OPTIONS log_path, when set).
class QuietStderr {
 public:
  QuietStderr() {
    static const bool reports_redirected = [] {
      for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
        const char* options = std::getenv(name);
        if (options != nullptr && std::string_view(options).find("log_path") != std::string_view::npos) return false;
      }
      if (&__sanitizer_set_report_fd == nullptr) return false;
      __sanitizer_set_report_fd(reinterpret_cast<void*>(static_cast<intptr_t>(::dup(2))));
      return true;
    }();
    (void)reports_redirected;
    std::fflush(stderr);
    saved_ = ::dup(2);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::close(null);
  }
  ~QuietStderr() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_;
};

// Piece sizes (1..max_piece) that cut a stream of `total` bytes, drawn from `seed`: the same
// input always splits the same way, so every finding reproduces.
inline std::vector<size_t> pieceSizes(size_t total, uint32_t seed, size_t max_piece) {
  std::vector<size_t> sizes;
  uint32_t state = seed * 2654435761u + 1;
  while (total > 0) {
    state = state * 1664525u + 1013904223u;
    size_t size = 1 + (state >> 16) % max_piece;
    if (size > total) size = total;
    sizes.push_back(size);
    total -= size;
  }
  return sizes;
}

// The input of a target that feeds a stream whole and in pieces: byte 0 seeds the piece sizes,
// byte 1 holds the largest piece (low 6 bits, plus 1) and two flags the target gives a meaning
// (0x40 and 0x80); the rest is the stream. Inputs under two bytes are skipped.
struct SplitInput {
  uint32_t seed = 0;
  size_t max_piece = 1;
  bool flag_40 = false;
  bool flag_80 = false;
  std::string_view stream;

  static std::optional<SplitInput> of(const uint8_t* data, size_t size) {
    if (size < 2) return std::nullopt;
    SplitInput input;
    input.seed = data[0];
    input.max_piece = 1 + (data[1] & 0x3f);
    input.flag_40 = (data[1] & 0x40) != 0;
    input.flag_80 = (data[1] & 0x80) != 0;
    input.stream = std::string_view(reinterpret_cast<const char*>(data) + 2, size - 2);
    return input;
  }
  std::vector<size_t> pieces(size_t total) const { return pieceSizes(total, seed, max_piece); }
};

}  // namespace stickyproxy::fuzz
