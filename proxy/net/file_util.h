// Small, careful file operations shared by the proxy and the backend.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace stickyproxy {

// Replaces the file at `path` with `content` so that a reader (or a crash) sees the old file or
// the new one, never a mix: writes "<path>.tmp", fsyncs it, renames it over `path`, and fsyncs
// the directory. Returns false with a message naming the file and the step in `error`.
bool writeFileAtomically(const std::string& path, std::string_view content, std::string* error, mode_t mode = 0600);

// Reads the whole file into `out`. Returns false with errno set (ENOENT when it is missing).
bool readWholeFile(const std::string& path, std::string* out);

// Writes all of `data` to `fd`, retrying after EINTR and short writes.
bool writeAllTo(int fd, std::string_view data);

// strerror-like text for an errno value.
std::string errnoText(int err);

}  // namespace stickyproxy
