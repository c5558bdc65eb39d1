#include "backend/viz/html_text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "backend/data/text_util.h"

namespace stickyproxy::backend {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Calls `emit` with the well-formed runs of `text` and U+FFFD in place of each invalid byte.
template <typename Emit>
void forEachUtf8Run(std::string_view text, Emit emit) {
  while (!text.empty()) {
    const std::optional<size_t> bad = firstInvalidUtf8(text);
    if (!bad) {
      emit(text);
      return;
    }
    emit(text.substr(0, *bad));
    emit(kReplacementCharacter);
    text.remove_prefix(*bad + 1);
  }
}

void appendHexEscape(std::string* out, unsigned code) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) *out += kHex[(code >> shift) & 0xF];
}

}  // namespace

void appendHtmlEscaped(std::string* out, std::string_view text) {
  forEachUtf8Run(text, [out](std::string_view run) {
    for (char c : run) {
      switch (c) {
        case '&':
          *out += "&amp;";
          break;
        case '<':
          *out += "&lt;";
          break;
        case '>':
          *out += "&gt;";
          break;
        case '"':
          *out += "&quot;";
          break;
        case '\'':
          *out += "&#39;";
          break;
        default:
          *out += c;
      }
    }
  });
}

std::string htmlEscaped(std::string_view text) {
  std::string out;
  appendHtmlEscaped(&out, text);
  return out;
}

void appendScriptJsonString(std::string* out, std::string_view text) {
  *out += '"';
  forEachUtf8Run(text, [out](std::string_view run) {
    for (size_t i = 0; i < run.size(); ++i) {
      const auto byte = static_cast<unsigned char>(run[i]);
      // U+2028 and U+2029 are E2 80 A8 and E2 80 A9; the run is well-formed, so the two bytes
      // after an E2 are present.
      if (byte == 0xE2 && i + 2 < run.size() && static_cast<unsigned char>(run[i + 1]) == 0x80 &&
          (static_cast<unsigned char>(run[i + 2]) == 0xA8 ||
           static_cast<unsigned char>(run[i + 2]) == 0xA9)) {
        appendHexEscape(out, static_cast<unsigned char>(run[i + 2]) == 0xA8 ? 0x2028 : 0x2029);
        i += 2;
        continue;
      }
      switch (byte) {
        case '"':
          *out += "\\\"";
          break;
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
          appendHexEscape(out, byte);
          break;
        default:
          if (byte < 0x20) {
            appendHexEscape(out, byte);
          } else {
            *out += static_cast<char>(byte);
          }
      }
    }
  });
  *out += '"';
}

void appendTenths(std::string* out, int64_t tenths) {
  if (tenths < 0) *out += '-';
  // Through uint64_t so that INT64_MIN has a magnitude too.
  const uint64_t magnitude = tenths < 0 ? 0 - static_cast<uint64_t>(tenths) : static_cast<uint64_t>(tenths);
  const uint64_t whole = magnitude / 10;
  const uint64_t fraction = magnitude % 10;
  if (whole != 0 || fraction == 0) *out += std::to_string(whole);
  if (fraction != 0) {
    *out += '.';
    *out += static_cast<char>('0' + fraction);
  }
}

std::string formatDisplayNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (value == 0) return "0";
  char buffer[400];
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(value))));
  std::to_chars_result result{};
  if (magnitude < -9) {
    result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific, 3);
  } else {
    const int decimals = magnitude >= 3 ? 0 : 3 - magnitude;
    result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  }
  if (result.ec != std::errc()) return "NaN";
  std::string text(buffer, result.ptr);
  // Drop trailing zeros of the fraction (and of a scientific mantissa), then a bare point.
  const size_t exponent = text.find('e');
  std::string tail = exponent == std::string::npos ? std::string() : text.substr(exponent);
  std::string digits = text.substr(0, exponent == std::string::npos ? text.size() : exponent);
  if (digits.find('.') != std::string::npos) {
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    if (!digits.empty() && digits.back() == '.') digits.pop_back();
  }
  if (digits == "-0") digits = "0";
  return digits + tail;
}

}  // namespace stickyproxy::backend
