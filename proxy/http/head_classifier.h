// Classifies a complete HTTP/1.x message head by the request-smuggling (desync) risk it carries,
// by the rules of RFC 9110/9112, the way an edge load balancer does: Compliant and Acceptable
// heads are forwarded, Ambiguous heads are forwarded in normalised form and end their
// connection, Severe heads are refused. The parser runs this before llhttp sees the head.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace stickyproxy {

enum class HeadClass : uint8_t { kCompliant, kAcceptable, kAmbiguous, kSevere };

// One row of the rule table per issue (head_classifier.cpp); kNone is a compliant head.
enum class HeadIssue : uint8_t {
  kNone,
  // Severe: the head cannot be read one way only.
  kBareCr,
  kBareLf,
  kBadRequestLine,
  kBadStatusLine,
  kBadVersion,
  kBadTarget,
  kControlChar,
  kSpaceBeforeFirstHeader,
  kSpaceBeforeColon,
  kBadHeaderName,
  kFoldedFramingHeader,
  kBadContentLength,
  kConflictingContentLength,
  kTransferEncodingWithContentLength,
  kBadTransferEncoding,
  kUnsupportedTransferCoding,
  kMissingHost,
  kDuplicateHost,
  kHostMismatch,
  // Ambiguous: readable, but another parser might read it another way.
  kFramingLookalike,
  kBodyOnBodilessMethod,
  kTransferEncodingOnHttp10,
  kMissingHostOnHttp10,
  kObsoleteFold,
  // Acceptable: a redundancy, collapsed.
  kDuplicateContentLength,
};

struct HeadRule {
  HeadIssue issue;
  HeadClass head_class;
  int status;               // the answer when the head is refused (400, or 501)
  std::string_view label;   // metric label and log note, e.g. "bare_lf"
};

// The rule table, one row per HeadIssue except kNone.
std::span<const HeadRule> headRules();
const HeadRule& headRule(HeadIssue issue);
std::string_view headClassName(HeadClass head_class);

struct HeadVerdict {
  HeadClass head_class = HeadClass::kCompliant;
  // The first issue of the highest class found (kNone when compliant).
  HeadIssue issue = HeadIssue::kNone;
  // The head must be forwarded as rewritten (duplicate Content-Length collapsed, folding
  // joined, framing look-alikes removed, an absolute-form target made origin-form).
  bool rewritten = false;

  bool compliant() const { return issue == HeadIssue::kNone; }
  std::string_view label() const { return compliant() ? std::string_view() : headRule(issue).label; }
};

// What the parser does with each class; see `[proxy] desync_mode` in conf/README.md.
enum class DesyncMode : uint8_t {
  kDefensive,  // refuse Severe, forward Ambiguous normalised and close after it
  kStrictest,  // refuse Severe and Ambiguous
  kMonitor,    // only classify and count; forward what llhttp accepts, unchanged
};

// The length of the head at the start of `bytes` (request or status line through the blank
// line), or 0 when it is not complete yet. Sets `*issue` (and returns 0) at the first bare LF,
// which makes the head Severe whatever follows. Leading empty lines must already be skipped.
size_t findHeadEnd(std::string_view bytes, HeadIssue* issue);

// Classifies a complete request or response head (as delimited by findHeadEnd). When the head
// is not Severe and needs rewriting, `*normalised` receives the head to parse instead.
HeadVerdict classifyRequestHead(std::string_view head, std::string* normalised);
HeadVerdict classifyResponseHead(std::string_view head, std::string* normalised);

}  // namespace stickyproxy
