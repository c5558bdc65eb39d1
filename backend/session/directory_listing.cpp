#include "backend/session/directory_listing.h"

namespace stickyproxy::backend {

namespace fs = std::filesystem;

std::vector<DirectoryEntry> listDirectory(const std::string& dir, std::error_code* error) {
  std::vector<DirectoryEntry> entries;
  error->clear();
  fs::directory_iterator it(dir, *error);
  for (; !*error && it != fs::directory_iterator(); it.increment(*error)) {
    std::error_code unknown;  // an entry gone between readdir and lstat is listed as not_found
    entries.push_back(DirectoryEntry{it->path().filename().string(), it->symlink_status(unknown).type()});
  }
  return entries;
}

}  // namespace stickyproxy::backend
