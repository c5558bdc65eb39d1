// One simulated browser's cookies for one site: what Set-Cookie stored, sent back as a Cookie field.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stickyproxy::load {

// Names are kept in the order first set; attributes (Path, Secure, ...) are ignored, since every
// cookie of the app applies to the whole site. Max-Age=0, a past Expires or an empty value removes.
class CookieJar {
 public:
  // Applies one Set-Cookie field value; a field without `name=` is ignored. Returns the name set
  // or removed (empty when ignored).
  std::string take(std::string_view set_cookie);
  // The value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  // "a=1; b=2", empty when the jar is.
  std::string header() const;
  bool empty() const { return cookies_.empty(); }
  void clear() { cookies_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> cookies_;
};

}  // namespace stickyproxy::load
