// One way to read a JSON document with picojson everywhere: picojson throws on a number a
// double cannot hold ("1e999"), which here is an error like any other.
#pragma once

#include <picojson.h>

#include <string>
#include <string_view>

namespace stickyproxy {

// Parses `text` into `*root`. Returns "" on success, else why not: invalid JSON, a number out of
// range, or anything after the document but blanks.
std::string parseJsonDocument(std::string_view text, picojson::value* root);

}  // namespace stickyproxy
