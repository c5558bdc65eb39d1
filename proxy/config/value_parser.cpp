#include "proxy/config/value_parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <span>

#include "proxy/net/endpoint.h"

namespace stickyproxy {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

char toLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

size_t countDigits(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && isDigit(text[n])) ++n;
  return n;
}

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool fail(std::string* error, std::string message) {
  *error = std::move(message);
  return false;
}

// Reads the leading run of digits of `text` into `*value`. The caller has checked that
// `digits` > 0, so the only possible failure is overflow.
bool readDigits(std::string_view text, size_t digits, uint64_t* value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, *value);
  return ec == std::errc() && end == text.data() + digits;
}

// The common front of durations and sizes: rejects an empty value, a sign and a missing
// number with the same wording, so both read alike in messages.
bool checkNumberFront(std::string_view text, const char* what, const char* expected,
                      std::string* error) {
  std::string prefix = inQuotes(text) + " is not a valid " + what + ": ";
  if (text.empty()) return fail(error, "empty value: expected " + std::string(expected));
  if (text[0] == '-') return fail(error, prefix + "negative values are not allowed");
  if (text[0] == '+') return fail(error, prefix + "signs are not allowed");
  if (!isDigit(text[0])) return fail(error, prefix + "expected " + expected);
  return true;
}

// A unit suffix of a scaled number and how many of the base unit it stands for.
struct ScaleUnit {
  std::string_view suffix;
  uint64_t multiplier;
};

bool suffixMatches(std::string_view suffix, std::string_view text, bool any_case) {
  if (suffix.size() != text.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (suffix[i] != (any_case ? toLower(text[i]) : text[i])) return false;
  }
  return true;
}

// Durations and sizes: "<digits><suffix>" for a suffix of `units` (lower case; `any_case` also
// takes upper case), scaled to the base unit and at most `max`. `explain_unit` words the
// problem with a suffix that is not in `units`; every message starts like checkNumberFront's.
std::optional<uint64_t> parseScaled(std::string_view text, const char* what, const char* expected,
                                    std::span<const ScaleUnit> units, bool any_case, uint64_t max,
                                    std::string (*explain_unit)(std::string_view unit),
                                    std::string* error) {
  if (!checkNumberFront(text, what, expected, error)) return std::nullopt;
  std::string prefix = inQuotes(text) + " is not a valid " + what + ": ";
  size_t digits = countDigits(text);
  std::string_view suffix = text.substr(digits);
  auto unit = std::find_if(units.begin(), units.end(), [&](const ScaleUnit& candidate) {
    return suffixMatches(candidate.suffix, suffix, any_case);
  });
  if (unit == units.end()) {
    fail(error, prefix + explain_unit(suffix));
    return std::nullopt;
  }
  uint64_t count = 0;
  if (!readDigits(text, digits, &count) || count > max / unit->multiplier) {
    fail(error, prefix + "too large");
    return std::nullopt;
  }
  return count * unit->multiplier;
}

std::optional<uint16_t> parsePort(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || text.size() > 5 || countDigits(text) != text.size()) return std::nullopt;
  if (!readDigits(text, text.size(), &value) || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// Explains why Endpoint::parse() refused a TCP address; only called after it did.
std::string explainBadTcpAddress(std::string_view text) {
  std::string prefix = inQuotes(text) + " is not a valid address: ";
  std::string_view host;
  std::string_view port;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return prefix + "expected [IPv6]:port";
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return prefix + "missing port (expected host:port)";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return prefix + "IPv6 addresses need brackets, e.g. [::1]:8080";
    }
  }
  if (!parsePort(port)) return prefix + "port must be an integer from 0 to 65535";
  if (host.empty()) return prefix + "missing host";
  return prefix + "host " + inQuotes(host) +
         " is not an IP address (host names are not resolved: use an IP literal, [IPv6] or "
         "localhost)";
}

}  // namespace

std::optional<Duration> parseDuration(std::string_view text, std::string* error) {
  static constexpr ScaleUnit kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000}};
  auto explain = [](std::string_view unit) -> std::string {
    if (unit.empty()) return "missing unit (ms, s, m, h or d)";
    if (unit[0] == '.') return "fractions are not allowed; use a smaller unit, e.g. 1500ms";
    return "unknown unit " + inQuotes(unit) + " (use ms, s, m, h or d)";
  };
  std::optional<uint64_t> millis =
      parseScaled(text, "duration", "an integer followed by ms, s, m, h or d, e.g. 10s", kUnits,
                  /*any_case=*/false, std::numeric_limits<Duration::rep>::max(), explain, error);
  if (!millis) return std::nullopt;
  return Duration(static_cast<Duration::rep>(*millis));
}

std::optional<uint64_t> parseSize(std::string_view text, std::string* error) {
  static constexpr ScaleUnit kUnits[] = {{"", 1}, {"k", 1ull << 10}, {"m", 1ull << 20}, {"g", 1ull << 30}};
  auto explain = [](std::string_view unit) -> std::string {
    return "unknown unit " + inQuotes(unit) + " (use k, m or g)";
  };
  return parseScaled(text, "size", "an integer optionally followed by k, m or g, e.g. 32k", kUnits,
                     /*any_case=*/true, std::numeric_limits<uint64_t>::max(), explain, error);
}

std::optional<uint64_t> parseUnsigned(std::string_view text, std::string* error) {
  if (!checkNumberFront(text, "integer", "a decimal integer", error)) return std::nullopt;
  size_t digits = countDigits(text);
  if (digits != text.size()) {
    fail(error, inQuotes(text) + " is not a valid integer: unexpected " +
                    inQuotes(text.substr(digits)) + " after the number");
    return std::nullopt;
  }
  uint64_t value = 0;
  if (!readDigits(text, digits, &value)) {
    fail(error, inQuotes(text) + " is not a valid integer: too large");
    return std::nullopt;
  }
  return value;
}

std::optional<Address> parseAddress(std::string_view text, std::string* error) {
  Address address;
  if (text.starts_with("unix:")) {
    if (text.size() == 5) {
      fail(error, inQuotes(text) + " is not a valid address: empty unix socket path");
      return std::nullopt;
    }
    address.kind = Address::Kind::kUnix;
    address.path = std::string(text.substr(5));
    return address;
  }
  // TCP syntax and IP literal checks are the net layer's, so that whatever passes here
  // is exactly what the listener and the upstream connector accept.
  std::optional<Endpoint> endpoint = Endpoint::parse(text);
  if (!endpoint || endpoint->kind != Endpoint::Kind::kTcp) {
    fail(error, explainBadTcpAddress(text));
    return std::nullopt;
  }
  address.kind = Address::Kind::kTcp;
  address.host = endpoint->host();
  address.port = endpoint->port();
  return address;
}

std::optional<Cidr> parseCidr(std::string_view text, std::string* error) {
  std::string prefix = inQuotes(text) + " is not a valid CIDR: ";
  size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  Cidr cidr;
  cidr.text = std::string(text);
  int max_len = 0;
  if (inet_pton(AF_INET, host.c_str(), cidr.bytes) == 1) {
    cidr.family = AF_INET;
    max_len = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), cidr.bytes) == 1) {
    cidr.family = AF_INET6;
    max_len = 128;
  } else {
    fail(error, prefix + inQuotes(host) + " is not an IPv4 or IPv6 address");
    return std::nullopt;
  }
  cidr.prefix_len = max_len;
  if (slash != std::string_view::npos) {
    std::string_view len_text = text.substr(slash + 1);
    uint64_t len = 0;
    if (len_text.empty() || len_text.size() > 3 || countDigits(len_text) != len_text.size() ||
        !readDigits(len_text, len_text.size(), &len) || len > static_cast<uint64_t>(max_len)) {
      fail(error, prefix + "prefix length must be an integer from 0 to " + std::to_string(max_len));
      return std::nullopt;
    }
    cidr.prefix_len = static_cast<int>(len);
  }
  // A network written with host bits set is most likely a typo for something else, and
  // silently masking it would widen or move the trusted range without anyone noticing.
  uint8_t network[16] = {};
  bool host_bits_set = false;
  for (int i = 0; i < max_len / 8; ++i) {
    int bits_in_prefix = std::min(8, std::max(0, cidr.prefix_len - i * 8));
    auto mask = static_cast<uint8_t>(bits_in_prefix == 0 ? 0 : 0xff << (8 - bits_in_prefix));
    network[i] = static_cast<uint8_t>(cidr.bytes[i] & mask);
    if (network[i] != cidr.bytes[i]) host_bits_set = true;
  }
  if (host_bits_set) {
    char network_text[INET6_ADDRSTRLEN] = {};
    inet_ntop(cidr.family, network, network_text, sizeof network_text);
    fail(error, prefix + "host bits are set (the network is " + network_text + "/" +
                    std::to_string(cidr.prefix_len) + ")");
    return std::nullopt;
  }
  return cidr;
}

std::optional<std::vector<std::string>> splitArgs(std::string_view text, std::string* error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  bool in_quotes = false;
  size_t quote_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
      word += text[++i];
      in_word = true;
    } else if (c == '"') {
      in_quotes = !in_quotes;
      quote_start = i;
      in_word = true;  // so that "" yields an empty word
    } else if ((c == ' ' || c == '\t') && !in_quotes) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_quotes) {
    fail(error, "unterminated double quote (opened at character " + std::to_string(quote_start + 1) +
                    " of the value)");
    return std::nullopt;
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

bool isToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (isDigit(c) || isAlpha(c)) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

bool isEnvName(std::string_view text) {
  if (text.empty() || isDigit(text[0])) return false;
  for (char c : text) {
    if (!isDigit(c) && !isAlpha(c) && c != '_') return false;
  }
  return true;
}

bool isWorkerName(std::string_view text) {
  if (text.empty() || text.size() > 32) return false;
  for (char c : text) {
    if (!isDigit(c) && !isAlpha(c) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace stickyproxy
