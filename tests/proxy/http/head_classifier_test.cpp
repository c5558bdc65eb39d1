#include "proxy/http/head_classifier.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace stickyproxy;

namespace {

struct Case {
  const char* name;
  std::string head;
  HeadClass head_class;
  HeadIssue issue;
  const char* normalised = nullptr;  // the rewritten head, when one is expected
};

// Request heads, one per rule and the compliant shapes around them.
const Case kRequestCases[] = {
    {"plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"POST with a length", "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", HeadClass::kCompliant,
     HeadIssue::kNone},
    {"POST chunked", "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", HeadClass::kCompliant,
     HeadIssue::kNone},
    {"HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"GET with Content-Length 0", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", HeadClass::kCompliant,
     HeadIssue::kNone},
    {"value with obs-text and a tab", "GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\tok \r\n\r\n",
     HeadClass::kCompliant, HeadIssue::kNone},
    {"CONNECT is left to the parser", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", HeadClass::kCompliant,
     HeadIssue::kNone},

    // Severe.
    {"bare CR in a value", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", HeadClass::kSevere, HeadIssue::kBareCr},
    {"bare CR before Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\n\rTransfer-Encoding: chunked\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBareCr},
    {"bare LF ends the request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBareLf},
    {"bare LF ends a field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", HeadClass::kSevere, HeadIssue::kBareLf},
    {"space before the first header line", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: h\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kSpaceBeforeFirstHeader},
    {"tab before the first header line", "GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kSpaceBeforeFirstHeader},
    {"space before a colon", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kSpaceBeforeColon},
    {"name of only spaces", "GET / HTTP/1.1\r\nHost: h\r\n  : x\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadHeaderName},
    {"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadHeaderName},
    {"name starting with a colon", "GET / HTTP/1.1\r\nHost: h\r\n:authority: x\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadHeaderName},
    {"name that is not a token", "GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadHeaderName},
    {"line without a colon", "GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadHeaderName},
    {"control character in a name", std::string("GET / HTTP/1.1\r\nHost: h\r\nX\x01Y: 1\r\n\r\n"), HeadClass::kSevere,
     HeadIssue::kBadHeaderName},
    {"NUL in a value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), HeadClass::kSevere,
     HeadIssue::kControlChar},
    {"DEL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", HeadClass::kSevere, HeadIssue::kControlChar},
    {"tab in the target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kControlChar},
    {"control character in the target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kControlChar},
    {"a second request line in the target", "GET /a HTTP/1.1 GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadRequestLine},
    {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadRequestLine},
    {"no version", "GET /\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadRequestLine},
    {"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadRequestLine},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadVersion},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadVersion},
    {"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kConflictingContentLength},
    {"a Content-Length list that differs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kConflictingContentLength},
    {"Content-Length with a sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadContentLength},
    {"empty Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadContentLength},
    {"huge Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadContentLength},
    {"Transfer-Encoding with Content-Length",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kTransferEncodingWithContentLength},
    {"Transfer-Encoding not ending in chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadTransferEncoding},
    {"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadTransferEncoding},
    {"Transfer-Encoding identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadTransferEncoding},
    {"Transfer-Encoding xchunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kBadTransferEncoding},
    {"gzip then chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kUnsupportedTransferCoding},
    {"folded Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n 2\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kFoldedFramingHeader},
    {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", HeadClass::kSevere, HeadIssue::kMissingHost},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HeadClass::kSevere, HeadIssue::kDuplicateHost},
    {"two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kDuplicateHost},
    {"absolute form naming another host", "GET http://evil/x HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kHostMismatch},
    {"absolute form with userinfo", "GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadTarget},
    {"target that is no form", "GET x HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadTarget},
    {"asterisk outside OPTIONS", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadTarget},
    {"no blank line", "GET / HTTP/1.1\r\nHost: h\r\n", HeadClass::kSevere, HeadIssue::kBadHeaderName},
    // Found by the request_head fuzz target (tests/fuzz/findings).
    {"a request line without a version (HTTP/0.9)", "PRI /x\r\nHost: a\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadRequestLine},
    {"an empty name after a field", "GET / HTTP/1.1\r\nHost: a\r\n: 5\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadHeaderName},

    // Ambiguous: forwarded normalised, then the connection ends.
    {"Transfer_Encoding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
     HeadClass::kAmbiguous, HeadIssue::kFramingLookalike, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"},
    {"content_length", "GET / HTTP/1.1\r\ncontent_length: 5\r\nHost: h\r\n\r\n", HeadClass::kAmbiguous,
     HeadIssue::kFramingLookalike, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
    {"GET with a body", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", HeadClass::kAmbiguous,
     HeadIssue::kBodyOnBodilessMethod},
    {"HEAD chunked", "HEAD / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", HeadClass::kAmbiguous,
     HeadIssue::kBodyOnBodilessMethod},
    {"OPTIONS with a body", "OPTIONS / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n", HeadClass::kAmbiguous,
     HeadIssue::kBodyOnBodilessMethod},
    {"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
     HeadClass::kAmbiguous, HeadIssue::kTransferEncodingOnHttp10},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", HeadClass::kAmbiguous, HeadIssue::kMissingHostOnHttp10},
    {"obsolete line folding", "GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n \t b\r\nY: c\r\n\r\n",
     HeadClass::kAmbiguous, HeadIssue::kObsoleteFold, "GET / HTTP/1.1\r\nHost: h\r\nX-Long: a b\r\nY: c\r\n\r\n"},
    {"a lookalike's fold goes with it",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: x\r\n chunked\r\nContent-Length: 0\r\n\r\n",
     HeadClass::kAmbiguous, HeadIssue::kFramingLookalike, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},

    // Acceptable: collapsed.
    {"two equal Content-Lengths",
     "POST / HTTP/1.1\r\nContent-Length: 3\r\nHost: h\r\nContent-Length: 3\r\n\r\n", HeadClass::kAcceptable,
     HeadIssue::kDuplicateContentLength, "POST / HTTP/1.1\r\nContent-Length: 3\r\nHost: h\r\n\r\n"},
    {"an equal Content-Length list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 , 3\r\n\r\n",
     HeadClass::kAcceptable, HeadIssue::kDuplicateContentLength,
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"},
    // Compliant, rewritten.
    {"absolute form becomes origin form", "GET http://H:8080/x?y HTTP/1.1\r\nHost: h:8080\r\n\r\n",
     HeadClass::kCompliant, HeadIssue::kNone, "GET /x?y HTTP/1.1\r\nHost: h:8080\r\n\r\n"},
    {"absolute form without a path", "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", HeadClass::kCompliant,
     HeadIssue::kNone, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
};

const Case kResponseCases[] = {
    {"plain response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"no reason phrase", "HTTP/1.1 204 \r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"no space after the code", "HTTP/1.1 204\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"response without Host", "HTTP/1.0 200 OK\r\n\r\n", HeadClass::kCompliant, HeadIssue::kNone},
    {"two different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kConflictingContentLength},
    {"chunked and a length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
     HeadClass::kSevere, HeadIssue::kTransferEncodingWithContentLength},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n", HeadClass::kSevere, HeadIssue::kBareLf},
    {"bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadStatusLine},
    // Found by the response_head fuzz target (tests/fuzz/findings).
    {"a two-digit status", "HTTP/1.1 31 Odd\r\nContent-Length: 0\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadStatusLine},
    {"status 000", "HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadStatusLine},
    {"status 600", "HTTP/1.1 600 OK\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadStatusLine},
    {"control characters in the reason", std::string("HTTP/1.1 200 O\0K\x01\r\nContent-Length: 0\r\n\r\n", 40),
     HeadClass::kSevere, HeadIssue::kControlChar},
    {"HTTP/2 status line", "HTTP/2.0 200 OK\r\n\r\n", HeadClass::kSevere, HeadIssue::kBadVersion},
    {"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadContentLength},
    {"a coding after chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HeadClass::kSevere,
     HeadIssue::kBadTransferEncoding},
    {"lookalike dropped", "HTTP/1.1 200 OK\r\nContent_Length: 9\r\nContent-Length: 2\r\n\r\n", HeadClass::kAmbiguous,
     HeadIssue::kFramingLookalike, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"},
};

void check(const Case& c, bool request) {
  INFO(c.name);
  std::string normalised;
  HeadVerdict verdict = request ? classifyRequestHead(c.head, &normalised) : classifyResponseHead(c.head, &normalised);
  CHECK(headClassName(verdict.head_class) == headClassName(c.head_class));
  CHECK(headRule(verdict.issue).label == headRule(c.issue).label);
  if (c.normalised != nullptr) {
    CHECK(verdict.rewritten);
    CHECK(normalised == c.normalised);
  } else {
    CHECK_FALSE(verdict.rewritten);
  }
}

}  // namespace

TEST_CASE("request heads are classified rule by rule", "[http][classifier]") {
  for (const Case& c : kRequestCases) check(c, true);
}

TEST_CASE("response heads are classified by their framing", "[http][classifier]") {
  for (const Case& c : kResponseCases) check(c, false);
}

TEST_CASE("every rule has a distinct label, a class and a refusal status", "[http][classifier]") {
  std::set<std::string_view> labels;
  for (const HeadRule& rule : headRules()) {
    INFO(rule.label);
    CHECK(labels.insert(rule.label).second);
    CHECK(rule.head_class != HeadClass::kCompliant);
    CHECK((rule.status == 400 || rule.status == 501));
    CHECK(headRule(rule.issue).label == rule.label);
  }
  CHECK(headRule(HeadIssue::kNone).label.empty());
}

TEST_CASE("the end of a head is its first empty line; a bare LF is found before it", "[http][classifier]") {
  HeadIssue issue = HeadIssue::kNone;
  CHECK(findHeadEnd("GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY", &issue) == 27);
  CHECK(findHeadEnd("GET / HTTP/1.1\r\nHost: h\r\n", &issue) == 0);
  CHECK(findHeadEnd("GET / HTTP/1.1\r\nHost: h\r\n\r", &issue) == 0);
  CHECK(issue == HeadIssue::kNone);
  CHECK(findHeadEnd("GET / HTTP/1.1\r\nHost: h\n", &issue) == 0);
  CHECK(issue == HeadIssue::kBareLf);
}
