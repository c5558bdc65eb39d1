#include "proxy/http/head_classifier.h"

#include <array>
#include <cctype>
#include <cstring>

#include "proxy/http/http_message.h"

namespace stickyproxy {

namespace {

// The rule table: what each issue is and how a refusal answers it. Ambiguous rules follow the
// requests AWS's desync mitigation calls Ambiguous; RFC 9112 sections 2.2, 3, 5 and 6 the rest.
constexpr HeadRule kRules[] = {
    {HeadIssue::kBareCr, HeadClass::kSevere, 400, "bare_cr"},
    {HeadIssue::kBareLf, HeadClass::kSevere, 400, "bare_lf"},
    {HeadIssue::kBadRequestLine, HeadClass::kSevere, 400, "bad_request_line"},
    {HeadIssue::kBadStatusLine, HeadClass::kSevere, 400, "bad_status_line"},
    {HeadIssue::kBadVersion, HeadClass::kSevere, 400, "bad_version"},
    {HeadIssue::kBadTarget, HeadClass::kSevere, 400, "bad_target"},
    {HeadIssue::kControlChar, HeadClass::kSevere, 400, "control_char"},
    {HeadIssue::kSpaceBeforeFirstHeader, HeadClass::kSevere, 400, "space_before_first_header"},
    {HeadIssue::kSpaceBeforeColon, HeadClass::kSevere, 400, "space_before_colon"},
    {HeadIssue::kBadHeaderName, HeadClass::kSevere, 400, "bad_header_name"},
    {HeadIssue::kFoldedFramingHeader, HeadClass::kSevere, 400, "folded_framing_header"},
    {HeadIssue::kBadContentLength, HeadClass::kSevere, 400, "bad_content_length"},
    {HeadIssue::kConflictingContentLength, HeadClass::kSevere, 400, "conflicting_content_length"},
    {HeadIssue::kTransferEncodingWithContentLength, HeadClass::kSevere, 400, "te_with_content_length"},
    {HeadIssue::kBadTransferEncoding, HeadClass::kSevere, 400, "bad_transfer_encoding"},
    {HeadIssue::kUnsupportedTransferCoding, HeadClass::kSevere, 501, "unsupported_transfer_coding"},
    {HeadIssue::kMissingHost, HeadClass::kSevere, 400, "missing_host"},
    {HeadIssue::kDuplicateHost, HeadClass::kSevere, 400, "duplicate_host"},
    {HeadIssue::kHostMismatch, HeadClass::kSevere, 400, "host_mismatch"},
    {HeadIssue::kFramingLookalike, HeadClass::kAmbiguous, 400, "framing_lookalike"},
    {HeadIssue::kBodyOnBodilessMethod, HeadClass::kAmbiguous, 400, "body_on_bodiless_method"},
    {HeadIssue::kTransferEncodingOnHttp10, HeadClass::kAmbiguous, 400, "te_on_http10"},
    {HeadIssue::kMissingHostOnHttp10, HeadClass::kAmbiguous, 400, "missing_host_http10"},
    {HeadIssue::kObsoleteFold, HeadClass::kAmbiguous, 400, "obsolete_fold"},
    {HeadIssue::kDuplicateContentLength, HeadClass::kAcceptable, 400, "duplicate_content_length"},
};

constexpr HeadRule kNoIssue{HeadIssue::kNone, HeadClass::kCompliant, 200, ""};

// tchar of RFC 9110 section 5.6.2.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[static_cast<size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[static_cast<size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool isToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// A control character (HTAB excepted when `tab_ok`), DEL or NUL.
bool hasControl(std::string_view text, bool tab_ok) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && !(tab_ok && byte == '\t')) || byte == 0x7f) return true;
  }
  return false;
}

bool isSpace(char c) { return c == ' ' || c == '\t'; }

// Lower case with '_' read as '-': how CGI-style back ends (and some proxies) fold names.
bool looksLike(std::string_view name, std::string_view canonical) {
  if (name.size() != canonical.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    if (c == '_') c = '-';
    if (c != canonical[i]) return false;
  }
  return true;
}

enum class FieldKind : uint8_t { kOther, kContentLength, kTransferEncoding, kHost, kLookalike };

FieldKind kindOf(std::string_view name) {
  if (equalsIgnoreCase(name, "content-length")) return FieldKind::kContentLength;
  if (equalsIgnoreCase(name, "transfer-encoding")) return FieldKind::kTransferEncoding;
  if (equalsIgnoreCase(name, "host")) return FieldKind::kHost;
  if (looksLike(name, "content-length") || looksLike(name, "transfer-encoding")) return FieldKind::kLookalike;
  return FieldKind::kOther;
}

// Calls `visit` on each element of a comma-separated list, trimmed, empty ones included.
template <typename Visit>
void forEachElement(std::string_view value, Visit&& visit) {
  while (true) {
    size_t comma = value.find(',');
    visit(trimOws(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// One pass over a complete head: lines, then framing and request rules. Stops at the first
// Severe issue; otherwise keeps the first issue of the highest class.
class HeadScan {
 public:
  HeadScan(std::string_view head, bool request) : head_(head), request_(request) {}

  HeadVerdict run(std::string* normalised) {
    if (scanLines() && request_) checkRequest();
    if (verdict_.head_class != HeadClass::kSevere) {
      checkFraming();
      if (verdict_.head_class != HeadClass::kSevere && request_) checkTarget();
    }
    if (verdict_.head_class == HeadClass::kSevere) verdict_.rewritten = false;
    if (verdict_.rewritten && normalised != nullptr) *normalised = rewrite();
    return verdict_;
  }

 private:
  bool severe() const { return verdict_.head_class == HeadClass::kSevere; }

  void note(HeadIssue issue) {
    const HeadRule& rule = headRule(issue);
    if (rule.head_class > verdict_.head_class) {
      verdict_.head_class = rule.head_class;
      verdict_.issue = issue;
    }
  }

  // Splits the head at CRLF and reads each line; false once Severe.
  bool scanLines() {
    size_t position = 0;
    bool first = true;
    while (position < head_.size()) {
      size_t lf = head_.find('\n', position);
      if (lf == std::string_view::npos || lf == position || head_[lf - 1] != '\r') {
        note(lf == std::string_view::npos ? (first ? firstLineIssue() : HeadIssue::kBadHeaderName) : HeadIssue::kBareLf);
        return false;
      }
      std::string_view line = head_.substr(position, lf - 1 - position);
      position = lf + 1;
      if (line.find('\r') != std::string_view::npos) {
        note(HeadIssue::kBareCr);
        return false;
      }
      if (first) {
        first = false;
        if (request_ ? !readRequestLine(line) : !readStatusLine(line)) return false;
      } else if (line.empty()) {
        return position == head_.size() || (note(HeadIssue::kBadHeaderName), false);
      } else if (!readField(line)) {
        return false;
      }
    }
    note(first ? firstLineIssue() : HeadIssue::kBadHeaderName);  // no blank line at the end
    return false;
  }

  HeadIssue firstLineIssue() const { return request_ ? HeadIssue::kBadRequestLine : HeadIssue::kBadStatusLine; }

  // "HTTP/1.0" or "HTTP/1.1"; other well-formed versions are kBadVersion.
  bool readVersion(std::string_view version, HeadIssue malformed) {
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        !std::isdigit(static_cast<unsigned char>(version[5])) ||
        !std::isdigit(static_cast<unsigned char>(version[7]))) {
      note(malformed);
      return false;
    }
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
      note(HeadIssue::kBadVersion);
      return false;
    }
    http10_ = version[7] == '0';
    return true;
  }

  bool readRequestLine(std::string_view line) {
    size_t first_space = line.find(' ');
    size_t second_space = first_space == std::string_view::npos ? first_space : line.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) {
      note(hasControl(line, false) ? HeadIssue::kControlChar : HeadIssue::kBadRequestLine);
      return false;
    }
    method_ = line.substr(0, first_space);
    target_ = line.substr(first_space + 1, second_space - first_space - 1);
    std::string_view version = line.substr(second_space + 1);
    if (hasControl(target_, false)) {
      note(HeadIssue::kControlChar);
      return false;
    }
    // A space in the version is a second request line smuggled into the target.
    if (!isToken(method_) || target_.empty() || version.find(' ') != std::string_view::npos) {
      note(HeadIssue::kBadRequestLine);
      return false;
    }
    return readVersion(version, HeadIssue::kBadRequestLine);
  }

  bool readStatusLine(std::string_view line) {
    if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
      note(HeadIssue::kBadStatusLine);
      return false;
    }
    // Three digits, 100 to 599 (RFC 9110 section 15): "000" would be re-serialised as "0".
    for (size_t i = 9; i < 12; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(line[i])) || (i == 9 && (line[i] < '1' || line[i] > '5'))) {
        note(HeadIssue::kBadStatusLine);
        return false;
      }
    }
    if (hasControl(line.substr(12), true)) {
      note(HeadIssue::kControlChar);
      return false;
    }
    return readVersion(line.substr(0, 8), HeadIssue::kBadStatusLine);
  }

  bool readField(std::string_view line) {
    if (isSpace(line.front())) {
      if (fields_ == 0) {
        note(HeadIssue::kSpaceBeforeFirstHeader);
        return false;
      }
      if (hasControl(line, true)) {
        note(HeadIssue::kControlChar);
        return false;
      }
      if (trimOws(line).starts_with(':')) {  // not a fold: a field whose name is only spaces
        note(HeadIssue::kBadHeaderName);
        return false;
      }
      if (last_kind_ != FieldKind::kOther && last_kind_ != FieldKind::kLookalike) {
        note(HeadIssue::kFoldedFramingHeader);
        return false;
      }
      note(HeadIssue::kObsoleteFold);
      verdict_.rewritten = true;
      return true;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      note(HeadIssue::kBadHeaderName);
      return false;
    }
    std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) {
      note(HeadIssue::kSpaceBeforeColon);
      return false;
    }
    if (!isToken(name)) {
      note(HeadIssue::kBadHeaderName);
      return false;
    }
    std::string_view value = trimOws(line.substr(colon + 1));
    if (hasControl(value, true)) {
      note(HeadIssue::kControlChar);
      return false;
    }
    ++fields_;
    last_kind_ = kindOf(name);
    switch (last_kind_) {
      case FieldKind::kContentLength: readContentLength(value); break;
      case FieldKind::kTransferEncoding: readTransferEncoding(value); break;
      case FieldKind::kHost:
        if (hosts_++ == 0) host_ = value;
        break;
      case FieldKind::kLookalike:
        note(HeadIssue::kFramingLookalike);
        verdict_.rewritten = true;
        break;
      case FieldKind::kOther: break;
    }
    return !severe();
  }

  void readContentLength(std::string_view value) {
    forEachElement(value, [&](std::string_view element) {
      if (element.empty() || element.size() > 18 ||
          element.find_first_not_of("0123456789") != std::string_view::npos) {
        note(HeadIssue::kBadContentLength);
        return;
      }
      uint64_t length = 0;
      for (char digit : element) length = length * 10 + static_cast<uint64_t>(digit - '0');
      if (content_lengths_++ == 0) {
        content_length_ = length;
      } else if (length != content_length_) {
        note(HeadIssue::kConflictingContentLength);
      }
    });
  }

  void readTransferEncoding(std::string_view value) {
    has_transfer_encoding_ = true;
    forEachElement(value, [&](std::string_view coding) {
      if (coding.empty()) return;
      if (chunked_last_) {
        note(HeadIssue::kBadTransferEncoding);  // nothing may follow chunked, not even chunked
      } else if (equalsIgnoreCase(coding, "chunked")) {
        chunked_last_ = true;
      } else {
        other_coding_ = true;
      }
    });
  }

  void checkFraming() {
    if (content_lengths_ > 1) {
      note(HeadIssue::kDuplicateContentLength);
      verdict_.rewritten = true;
    }
    if (!has_transfer_encoding_) return;
    if (content_lengths_ > 0) {
      note(HeadIssue::kTransferEncodingWithContentLength);
    } else if (!chunked_last_) {
      note(HeadIssue::kBadTransferEncoding);
    } else if (other_coding_) {
      note(HeadIssue::kUnsupportedTransferCoding);  // the proxy re-frames bodies: only chunked
    } else if (request_ && http10_) {
      note(HeadIssue::kTransferEncodingOnHttp10);
    }
  }

  void checkRequest() {
    if (hosts_ > 1) {
      note(HeadIssue::kDuplicateHost);
    } else if (hosts_ == 0) {
      note(http10_ ? HeadIssue::kMissingHostOnHttp10 : HeadIssue::kMissingHost);
    }
    bool has_body = has_transfer_encoding_ || (content_lengths_ > 0 && content_length_ > 0);
    if (has_body && (method_ == "GET" || method_ == "HEAD" || method_ == "OPTIONS")) {
      note(HeadIssue::kBodyOnBodilessMethod);
    }
  }

  // Origin-form, absolute-form with a matching Host (made origin-form), or "*" for OPTIONS.
  // CONNECT's authority-form is left to the parser, which answers 501.
  void checkTarget() {
    if (method_ == "CONNECT" || target_.front() == '/') return;
    if (target_ == "*") {
      if (method_ != "OPTIONS") note(HeadIssue::kBadTarget);
      return;
    }
    size_t scheme_end = target_.find("://");
    std::string_view scheme = target_.substr(0, scheme_end);
    if (scheme_end == std::string_view::npos || !(equalsIgnoreCase(scheme, "http") || equalsIgnoreCase(scheme, "https"))) {
      note(HeadIssue::kBadTarget);
      return;
    }
    std::string_view rest = target_.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, path_start);
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
      note(HeadIssue::kBadTarget);
      return;
    }
    if (hosts_ == 1 && !equalsIgnoreCase(authority, host_)) {
      note(HeadIssue::kHostMismatch);
      return;
    }
    origin_target_ = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    absolute_form_ = true;
    verdict_.rewritten = true;
  }

  // The head as it is forwarded: one Content-Length, folds joined by a space, look-alike fields
  // dropped, an origin-form target. Lines are valid by now (no Severe issue was found).
  std::string rewrite() const {
    std::string out;
    out.reserve(head_.size() + 8);
    size_t position = 0;
    bool first = true;
    bool length_written = false;
    bool dropping = false;
    while (position < head_.size()) {
      size_t lf = head_.find('\n', position);
      std::string_view line = head_.substr(position, lf - 1 - position);
      position = lf + 1;
      if (first) {
        first = false;
        if (request_ && absolute_form_) {
          out.append(method_).append(" ");
          if (origin_target_.empty() || origin_target_.front() != '/') out.append("/");
          out.append(origin_target_).append(line.substr(method_.size() + 1 + target_.size()));
        } else {
          out.append(line);
        }
        out.append("\r\n");
        continue;
      }
      if (line.empty()) break;
      if (isSpace(line.front())) {
        if (dropping) continue;
        // Join the fold: drop the CRLF just written, keep one space and the trimmed text.
        out.resize(out.size() - 2);
        out.append(" ").append(trimOws(line)).append("\r\n");
        continue;
      }
      std::string_view name = line.substr(0, line.find(':'));
      FieldKind kind = kindOf(name);
      dropping = kind == FieldKind::kLookalike || (kind == FieldKind::kContentLength && length_written);
      if (dropping) continue;
      if (kind == FieldKind::kContentLength) {
        length_written = true;
        out.append("Content-Length: ").append(std::to_string(content_length_)).append("\r\n");
        continue;
      }
      out.append(line).append("\r\n");
    }
    out.append("\r\n");
    return out;
  }

  std::string_view head_;
  bool request_;
  HeadVerdict verdict_;
  bool http10_ = false;
  std::string_view method_;
  std::string_view target_;
  std::string_view origin_target_;
  bool absolute_form_ = false;
  size_t fields_ = 0;
  FieldKind last_kind_ = FieldKind::kOther;
  size_t hosts_ = 0;
  std::string_view host_;
  size_t content_lengths_ = 0;
  uint64_t content_length_ = 0;
  bool has_transfer_encoding_ = false;
  bool chunked_last_ = false;
  bool other_coding_ = false;
};

}  // namespace

std::span<const HeadRule> headRules() { return kRules; }

const HeadRule& headRule(HeadIssue issue) {
  for (const HeadRule& rule : kRules) {
    if (rule.issue == issue) return rule;
  }
  return kNoIssue;
}

std::string_view headClassName(HeadClass head_class) {
  switch (head_class) {
    case HeadClass::kCompliant: return "compliant";
    case HeadClass::kAcceptable: return "acceptable";
    case HeadClass::kAmbiguous: return "ambiguous";
    case HeadClass::kSevere: return "severe";
  }
  return "compliant";
}

size_t findHeadEnd(std::string_view bytes, HeadIssue* issue) {
  size_t position = 0;
  while (true) {
    const void* found = std::memchr(bytes.data() + position, '\n', bytes.size() - position);
    if (found == nullptr) return 0;
    size_t lf = static_cast<size_t>(static_cast<const char*>(found) - bytes.data());
    if (lf == 0 || bytes[lf - 1] != '\r') {
      *issue = HeadIssue::kBareLf;
      return 0;
    }
    // The head ends at the first empty line: CRLF right after this line's CRLF.
    if (lf >= 3 && bytes[lf - 2] == '\n' && bytes[lf - 3] == '\r') return lf + 1;
    position = lf + 1;
  }
}

HeadVerdict classifyRequestHead(std::string_view head, std::string* normalised) {
  return HeadScan(head, true).run(normalised);
}

HeadVerdict classifyResponseHead(std::string_view head, std::string* normalised) {
  return HeadScan(head, false).run(normalised);
}

}  // namespace stickyproxy
