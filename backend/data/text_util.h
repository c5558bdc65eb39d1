// Small text helpers shared by the backend's data readers (CSV, DBF attributes, zip entry names).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace stickyproxy::backend {

// Offset of the first byte of `bytes` that does not belong to a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or nullopt if all are.
// A sequence cut short by the end of `bytes` counts as invalid at its first byte.
std::optional<size_t> firstInvalidUtf8(std::string_view bytes);

inline bool isValidUtf8(std::string_view bytes) { return !firstInvalidUtf8(bytes).has_value(); }

// Re-encodes ISO-8859-1 bytes as UTF-8 (every byte is a code point, so this cannot fail).
std::string latin1ToUtf8(std::string_view bytes);

// `text` without leading and trailing spaces, tabs, CR and LF.
std::string_view trimAscii(std::string_view text);

// ASCII lower-case copy; other bytes are kept as they are.
std::string lowerAscii(std::string_view text);

// `text` made safe to quote in a message or log line: its first `max_bytes` bytes, with every
// byte that is not printable ASCII shown as '?'. For names (zip entries, files) whose raw bytes
// could be anything.
std::string printableAscii(std::string_view text, size_t max_bytes = 200);

}  // namespace stickyproxy::backend
