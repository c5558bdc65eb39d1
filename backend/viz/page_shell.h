// The frame shared by the backend's self-contained HTML pages: head, header, tooltip, data script.
//
// Pages load nothing from anywhere: styles and scripts are inline, the favicon is an empty data:
// URL (so the browser does not ask the server for /favicon.ico), and data for scripts travels as
// JSON in a <script type="application/json"> element that the page's script parses.
#pragma once

#include <string>
#include <string_view>

namespace stickyproxy::backend {

// Appends the doctype, the <head> (charset, viewport, escaped `title`, the empty favicon, the
// shared styles followed by `css`) and opens <body> with a header showing `title` and, when not
// empty, `subtitle`. `css` is trusted text written by our code, not escaped.
void appendPageStart(std::string* out, std::string_view title, std::string_view subtitle,
                     std::string_view css);

// Appends the tooltip element, `json` inside <script type="application/json" id="viz-data"> (it
// must already be script-safe, as appendScriptJsonString() writes strings), the shared tooltip
// functions followed by `script`, and closes the document. `script` is trusted text written by
// our code; it finds the data with JSON.parse(document.getElementById('viz-data').textContent)
// and may call tipShow(event, lines, key), tipMove(event) and tipHide(). tipShow() shows `lines`
// (the first in bold, empty ones skipped) as text, never as markup.
void appendPageEnd(std::string* out, std::string_view json, std::string_view script);

}  // namespace stickyproxy::backend
