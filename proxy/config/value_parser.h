// Parsers for the value types of a config file: durations, sizes, integers, addresses,
// CIDRs, argument lists, tokens. conf/README.md documents the syntax each one accepts.
//
// Every parser takes the value as written (already trimmed, comment removed) and never
// throws. On failure it returns nullopt and sets `*error` to a message that quotes the
// value, ready to follow "file:line: section.key: ".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"

namespace stickyproxy {

// An unsigned integer followed by exactly one unit: ms, s, m, h or d ("500ms", "10s", "7d").
// Rejects a missing or unknown unit, signs, fractions, and values beyond the range of Duration.
std::optional<Duration> parseDuration(std::string_view text, std::string* error);

// A byte count: an unsigned integer, optionally followed by k, m or g (any case), which
// multiply by 1024, 1024^2 and 1024^3. Rejects values that do not fit in 64 bits.
std::optional<uint64_t> parseSize(std::string_view text, std::string* error);

// A plain unsigned decimal integer ("100"), without sign or suffix, that fits in 64 bits.
std::optional<uint64_t> parseUnsigned(std::string_view text, std::string* error);

// "unix:PATH", "A.B.C.D:PORT", "[IPV6]:PORT" or "localhost:PORT" (taken as 127.0.0.1).
// Host names other than localhost are rejected: the proxy never does DNS lookups.
// The host of a TCP address is returned in canonical form ("::1", not "0:0::1"), so two
// spellings of one address compare equal. A unix path is returned as written: the caller
// resolves it and checks its length.
std::optional<Address> parseAddress(std::string_view text, std::string* error);

// "A.B.C.D/N", "IPV6/N", or a bare address (a /32 or /128). Rejects host bits set below
// the prefix, so "10.0.0.1/8" is an error rather than silently meaning 10.0.0.0/8.
// Cidr::text is set to `text`.
std::optional<Cidr> parseCidr(std::string_view text, std::string* error);

// Splits a command line into words at runs of spaces and tabs. Double quotes group words
// with spaces into one ("" is an empty word); a backslash escapes `"` and `\`; any other
// backslash is kept as is. Fails on an unterminated double quote.
std::optional<std::vector<std::string>> splitArgs(std::string_view text, std::string* error);

// True for a non-empty HTTP token (RFC 7230 tchar, which RFC 6265 uses for cookie names).
bool isToken(std::string_view text);

// True for a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool isEnvName(std::string_view text);

// True for a worker name: [A-Za-z0-9_-]{1,32}.
bool isWorkerName(std::string_view text);

}  // namespace stickyproxy
