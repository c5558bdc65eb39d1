#include "backend/app/session_layout.h"

namespace stickyproxy::backend {

namespace {

bool isAlnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

bool isSafeFileName(std::string_view name) {
  if (name.empty() || name.size() > 128 || !isAlnum(name.front())) return false;
  for (char c : name) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return name.find("..") == std::string_view::npos;
}

bool isValidUploadId(std::string_view id) {
  if (id.size() < 8 || id.size() > 64) return false;
  for (char c : id) {
    if (!isAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string joinPath(std::string_view a, std::string_view b) {
  std::string path(a);
  path.push_back('/');
  path.append(b);
  return path;
}

}  // namespace stickyproxy::backend
