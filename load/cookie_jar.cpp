#include "load/cookie_jar.h"

#include <algorithm>

#include "proxy/http/http_message.h"

namespace stickyproxy::load {

namespace {

bool removes(std::string_view attributes) {
  while (!attributes.empty()) {
    size_t end = attributes.find(';');
    std::string_view attribute = trimOws(attributes.substr(0, end));
    attributes = end == std::string_view::npos ? std::string_view() : attributes.substr(end + 1);
    size_t equals = attribute.find('=');
    std::string_view name = trimOws(attribute.substr(0, equals));
    std::string_view value = equals == std::string_view::npos ? std::string_view() : trimOws(attribute.substr(equals + 1));
    if (equalsIgnoreCase(name, "Max-Age") && !value.empty() && (value == "0" || value.front() == '-')) return true;
    // The app and the proxy expire cookies with the epoch date.
    if (equalsIgnoreCase(name, "Expires") && value.find("1970") != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

std::string CookieJar::take(std::string_view set_cookie) {
  size_t end = set_cookie.find(';');
  std::string_view pair = set_cookie.substr(0, end);
  size_t equals = pair.find('=');
  if (equals == std::string_view::npos) return {};
  std::string name(trimOws(pair.substr(0, equals)));
  if (name.empty()) return {};
  std::string_view value = trimOws(pair.substr(equals + 1));
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
  auto existing = std::find_if(cookies_.begin(), cookies_.end(), [&](const auto& entry) { return entry.first == name; });
  std::string_view attributes = end == std::string_view::npos ? std::string_view() : set_cookie.substr(end + 1);
  if (value.empty() || removes(attributes)) {
    if (existing != cookies_.end()) cookies_.erase(existing);
    return name;
  }
  if (existing != cookies_.end()) {
    existing->second.assign(value);
  } else {
    cookies_.emplace_back(name, std::string(value));
  }
  return name;
}

const std::string* CookieJar::find(std::string_view name) const {
  for (const auto& [key, value] : cookies_) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string CookieJar::header() const {
  std::string out;
  for (const auto& [name, value] : cookies_) {
    if (!out.empty()) out += "; ";
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

}  // namespace stickyproxy::load
