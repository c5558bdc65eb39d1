// Text for the HTML pages the backend renders: escaping for markup, JSON that is safe inside a
// <script> element, and numbers written the same way whatever the process locale.
//
// Ward names, titles and notes come from users' uploads, so everything that reaches a page goes
// through one of these functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stickyproxy::backend {

// Appends `text` to `out` with & < > " ' replaced by character references, so it is safe both
// as element content and inside a double- or single-quoted attribute value. Bytes that are not
// well-formed UTF-8 become U+FFFD, so a page is always valid UTF-8.
void appendHtmlEscaped(std::string* out, std::string_view text);
std::string htmlEscaped(std::string_view text);

// Appends `text` as a JSON string literal (quotes included) that may also sit inside an HTML
// <script> element: besides what JSON requires (quote, backslash, control characters), < > &
// are written as \u003c \u003e \u0026, so "</script>" or "<!--" cannot end or bend the element,
// and U+2028/U+2029 as \u2028 \u2029 for older JavaScript parsers. Invalid UTF-8 becomes U+FFFD.
void appendScriptJsonString(std::string* out, std::string_view text);

// Appends `tenths` / 10 in the shortest form an SVG path or attribute reads back exactly: "12",
// "12.5", ".5", "-.5", "-3" (no leading zero before the point, never "-0").
void appendTenths(std::string* out, int64_t tenths);

// `value` for people to read: four significant digits with trailing zeros dropped ("0.5321",
// "12.35", "123456", "-0.25"), scientific notation only for magnitudes below 1e-9 ("1.5e-12"),
// "0" for zero and -0, "NaN"/"Infinity"/"-Infinity" for non-finite values. Locale-independent.
std::string formatDisplayNumber(double value);

}  // namespace stickyproxy::backend
