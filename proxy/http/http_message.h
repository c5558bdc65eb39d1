// HTTP/1.x message heads: what the parser produces and the serialiser writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/head_classifier.h"

namespace stickyproxy {

struct Header {
  std::string name;
  std::string value;
};

// Header fields in arrival order; names compare case-insensitively.
//
// A list that goes away leaves its storage (the field vector, and names and values longer
// than a string holds inline) to its thread's bounded stash, where the parser takes it for the
// next head: parsing a stream of requests allocates nothing in steady state.
class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(const HeaderList& other) = default;
  HeaderList(HeaderList&& other) noexcept = default;
  HeaderList& operator=(const HeaderList& other) = default;
  HeaderList& operator=(HeaderList&& other) noexcept;
  ~HeaderList();

  void add(std::string name, std::string value) { fields_.push_back({std::move(name), std::move(value)}); }
  // Removes every field; the storage stays for the next fields or goes to the stash.
  void clear();
  // Room for `count` fields, taken from the stash when this list has none.
  void reserveRecycled(size_t count);
  // Adds a field named `name` with an empty value, its strings taken from the stash when
  // `name` is too long to be held inline.
  Header& addRecycled(std::string_view name);
  // Appends `piece` to `text` (a name or value of this list), taking a stashed string when
  // `text` is empty and `piece` too long to be held inline.
  static void appendRecycled(std::string& text, std::string_view piece);
  // Leaves `text`'s storage to the thread's stash (a request target when its head goes away).
  static void recycle(std::string& text);
  // Replaces every field named `name` by one with `value`.
  void set(std::string_view name, std::string value);
  // Removes every field named `name`; returns how many.
  size_t remove(std::string_view name);
  // The first value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  // True when any `name` field holds `token` in its comma-separated list (case-insensitive).
  bool hasToken(std::string_view name, std::string_view token) const;
  const std::vector<Header>& fields() const { return fields_; }
  std::vector<Header>& fields() { return fields_; }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<Header> fields_;
};

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// `text` without leading and trailing spaces and tabs (OWS, RFC 9110 section 5.6.3).
std::string_view trimOws(std::string_view text);

// Message framing as the parser saw it (RFC 9112 section 6).
struct BodyFraming {
  bool chunked = false;
  std::optional<uint64_t> content_length;
  // Response only: no Content-Length and not chunked, so the body runs to connection close.
  bool until_close = false;
  bool hasBody() const { return chunked || until_close || (content_length && *content_length > 0); }
};

struct RequestHead {
  std::string method;
  std::string target;
  int version_minor = 1;  // HTTP/1.<minor>
  HeaderList headers;
  BodyFraming framing;
  bool keep_alive = true;  // the client allows another request on this connection
  bool expect_continue = false;
  HeadVerdict verdict;  // what the classifier found; an Ambiguous request has keep_alive false

  bool isIdempotent() const;
  // The path without the query string.
  std::string_view path() const;
};

struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard phrase for `status`
  int version_minor = 1;
  HeaderList headers;
  BodyFraming framing;
  bool keep_alive = true;  // the server allows another request on this connection
};

std::string_view reasonPhrase(int status);

// Removes the hop-by-hop fields of RFC 9110 section 7.6.1: Connection, the fields it names,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
// Content-Length is end-to-end and stays.
void removeHopByHopHeaders(HeaderList& headers);

// "GET /x HTTP/1.1\r\nName: value\r\n...\r\n" with the fields exactly as given.
std::string serializeRequestHead(const RequestHead& head);
// `head` with its Content-Length and Transfer-Encoding fields made afresh from `head.framing`
// (chunked, or the length; none when it has no body), the other fields as given.
RequestHead withFramingFields(RequestHead head);
// The head as a client sends it: serializeRequestHead(withFramingFields(head)) for a head with
// framing; one without (a parsed head without Content-Length or chunked) is written as it is.
std::string serializeFramedRequestHead(const RequestHead& head);
// The size line of one chunk: "1f4\r\n".
std::string chunkSizeLine(size_t size);
// "HTTP/1.1 200 OK\r\n...\r\n" with the fields exactly as given.
std::string serializeResponseHead(const ResponseHead& head);
// The same, appended to `out` (whose capacity a caller may keep from head to head).
void appendResponseHead(const ResponseHead& head, std::string* out);

}  // namespace stickyproxy
