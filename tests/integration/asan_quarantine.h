#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace stickyproxy::integration {

// Under AddressSanitizer, freed memory waits in a quarantine (256 MB by default) before it is
// reused, so a process's RSS grows with everything it has freed. A test that bounds a process's
// RSS starts it inside this scope: the processes started meanwhile inherit ASAN_OPTIONS with
// quarantine_size_mb=0 and reuse freed memory at once; leak detection and every other check stay
// on. Without AddressSanitizer nobody reads the variable.
class WithoutAsanQuarantine {
 public:
  WithoutAsanQuarantine() {
    const char* options = std::getenv("ASAN_OPTIONS");
    if (options != nullptr) saved_ = options;
    std::string value = saved_ && !saved_->empty() ? *saved_ + ":quarantine_size_mb=0" : "quarantine_size_mb=0";
    ::setenv("ASAN_OPTIONS", value.c_str(), 1);
  }
  ~WithoutAsanQuarantine() {
    if (saved_) {
      ::setenv("ASAN_OPTIONS", saved_->c_str(), 1);
    } else {
      ::unsetenv("ASAN_OPTIONS");
    }
  }
  WithoutAsanQuarantine(const WithoutAsanQuarantine&) = delete;
  WithoutAsanQuarantine& operator=(const WithoutAsanQuarantine&) = delete;

 private:
  std::optional<std::string> saved_;
};

}  // namespace stickyproxy::integration
