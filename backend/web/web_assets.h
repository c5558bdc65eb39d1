// The backend's web UI, compiled into the binary.
//
// backend/web/index.html is turned into a C++ array at build time (cmake/embed_web_asset.cmake),
// so a worker serves the page without reading files at run time and an edit to the page rebuilds it.
#pragma once

#include <string_view>

namespace stickyproxy::backend {

// The whole single-page UI: one self-contained HTML document (inline CSS and JS, no external
// assets), UTF-8, served at GET / as text/html. The view stays valid for the life of the process.
std::string_view webIndexHtml();

}  // namespace stickyproxy::backend
