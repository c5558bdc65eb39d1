#include "backend/session/derived_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "proxy/net/file_util.h"

namespace stickyproxy::backend {

bool writeDerivedFile(const std::string& path, std::string_view content, std::string* error) {
  const std::string staged = path + ".tmp";
  auto fail = [&](std::string_view step) {
    const int err = errno;
    ::unlink(staged.c_str());
    if (error != nullptr) *error = staged + ": " + std::string(step) + ": " + errnoText(err);
    return false;
  };
  const int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open");
  if (!writeAllTo(fd, content)) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return fail("write");
  }
  if (::close(fd) != 0) return fail("close");
  if (::rename(staged.c_str(), path.c_str()) != 0) return fail("rename");
  return true;
}

}  // namespace stickyproxy::backend
