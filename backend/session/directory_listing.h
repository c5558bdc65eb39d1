// Listing a directory without exceptions. std::filesystem's range-for walk throws from the
// iterator's operator++ and from directory_entry queries without a std::error_code, and a throw
// on the event loop ends the worker with every session on it: the app and its sessions list
// directories through this instead.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace stickyproxy::backend {

struct DirectoryEntry {
  std::string name;                  // the file name alone
  std::filesystem::file_type type;   // as lstat sees it: a symlink is a symlink, never followed
};

// The entries of directory `dir`, in the order the file system gives them. When `dir` cannot be
// opened (missing included: ENOENT), or a step of the walk fails, `*error` is set and the entries
// read until then are returned; otherwise `*error` is cleared. Never throws (but std::bad_alloc).
std::vector<DirectoryEntry> listDirectory(const std::string& dir, std::error_code* error);

}  // namespace stickyproxy::backend
