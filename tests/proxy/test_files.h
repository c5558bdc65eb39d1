// Files for tests: a scratch directory removed with everything in it, and whole-file reads and
// writes. The one temp-dir helper of the C++ tests: unit tests and the integration harness
// (tests/integration/harness.h) both use it.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace stickyproxy::testing {

// A fresh directory made with mkdtemp under the system's temp dir ($TMPDIR, else /tmp), named
// `<prefix>-XXXXXX`; throws if it cannot be made. Removed with everything in it at destruction,
// unless STICKYPROXY_KEEP_TEMP=1 asks to keep configs and logs for a post-mortem.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "stickyproxy-test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    const char* keep = std::getenv("STICKYPROXY_KEEP_TEMP");
    if (keep != nullptr && std::string_view(keep) == "1") return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `path()/name` (not created).
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
  // The subdirectory `path()/name`, created (with its parents) if needed.
  std::string dir(std::string_view name) const {
    std::string sub = file(name);
    std::filesystem::create_directories(sub);
    return sub;
  }

 private:
  std::string path_;
};

inline bool fileExists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::exists(path, ignored);
}

// The whole file, or "" when it does not exist or cannot be read.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces the file's contents with `text`; throws when it cannot be written.
inline void writeFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace stickyproxy::testing
