// The live status page served at GET / on the metrics listener, compiled into the binary.
//
// metrics/web/status.html is turned into a C++ array at build time (cmake/embed_web_asset.cmake):
// the proxy serves it without reading files at run time, and an edit to the page rebuilds it.
#pragma once

#include <string_view>

namespace stickyproxy {

// One self-contained HTML document (inline CSS and JS, no external assets), UTF-8, that polls
// GET /status.json every second. The view stays valid for the life of the process.
std::string_view statusPageHtml();

}  // namespace stickyproxy
