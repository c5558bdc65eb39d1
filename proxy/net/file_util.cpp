#include "proxy/net/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace stickyproxy {

std::string errnoText(int err) { return std::generic_category().message(err); }

bool writeAllTo(int fd, std::string_view data) {
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    written += static_cast<size_t>(n);
  }
  return true;
}

bool readWholeFile(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      errno = err;
      return false;
    }
    if (n == 0) break;
    out->append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool writeFileAtomically(const std::string& path, std::string_view content, std::string* error, mode_t mode) {
  auto fail = [&](const std::string& what, int err) {
    if (error != nullptr) *error = what + ": " + errnoText(err);
    return false;
  };
  const std::string tmp_path = path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail(tmp_path + ": open", errno);
  if (!writeAllTo(fd, content) || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return fail(tmp_path + ": write", err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_path.c_str());
    return fail(tmp_path + ": close", err);
  }
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_path.c_str());
    return fail(path + ": rename", err);
  }
  // The rename is durable only once the directory entry itself reaches the disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return fail(dir + ": open directory", errno);
  if (::fsync(dir_fd) != 0) {
    const int err = errno;
    ::close(dir_fd);
    return fail(dir + ": fsync directory", err);
  }
  ::close(dir_fd);
  return true;
}

}  // namespace stickyproxy
