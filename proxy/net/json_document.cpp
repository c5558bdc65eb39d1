#include "proxy/net/json_document.h"

#include <algorithm>
#include <exception>

namespace stickyproxy {

std::string parseJsonDocument(std::string_view text, picojson::value* root) {
  std::string error;
  try {
    const char* end = picojson::parse(*root, text.data(), text.data() + text.size(), &error);
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    if (error.empty() && !std::all_of(end, text.data() + text.size(), blank)) error = "trailing data after the JSON document";
  } catch (const std::exception&) {
    error = "a number out of range";  // picojson throws when a double cannot hold it
  }
  if (error.empty()) return error;
  *root = picojson::value();
  return error;
}

}  // namespace stickyproxy
