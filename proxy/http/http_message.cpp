#include "proxy/http/http_message.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace stickyproxy {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // ASCII only, without the locale lookups of std::tolower: header names and tokens are ASCII.
  auto lower = [](char c) { return static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); };
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

namespace {

// Calls `visit` for each element of a comma-separated field value, trimmed, skipping empties.
template <typename Visit>
void forEachListElement(std::string_view value, Visit&& visit) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view element = trimOws(value.substr(0, comma));
    if (!element.empty()) visit(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// What finished header lists leave for the next ones on this thread, bounded: field vectors
// of at most kMaxFields fields, strings of at most kMaxStringBytes.
class HeaderStash {
 public:
  static constexpr size_t kMaxVectors = 32;
  static constexpr size_t kMaxFields = 256;
  static constexpr size_t kMaxStrings = 256;
  static constexpr size_t kMaxStringBytes = 8 * 1024;

  HeaderStash() {
    vectors_.reserve(kMaxVectors);
    strings_.reserve(kMaxStrings);
  }
  ~HeaderStash();

  // Empties `fields`, keeping its strings and then the vector itself when they are worth it.
  void keep(std::vector<Header>& fields) {
    for (Header& field : fields) {
      keepString(field.name);
      keepString(field.value);
    }
    fields.clear();
    if (fields.capacity() == 0 || fields.capacity() > kMaxFields || vectors_.size() >= kMaxVectors) return;
    vectors_.push_back(std::move(fields));
    fields = std::vector<Header>();
  }
  void keepString(std::string& text) {
    if (text.capacity() <= kInline || text.capacity() > kMaxStringBytes || strings_.size() >= kMaxStrings) return;
    text.clear();
    strings_.push_back(std::move(text));
  }
  // A stashed vector in `fields` (which must be empty), if any.
  void take(std::vector<Header>& fields) {
    if (vectors_.empty()) return;
    fields = std::move(vectors_.back());
    vectors_.pop_back();
  }
  // A stashed string of at least `size` bytes' capacity in `text` (which must be empty), if any.
  void take(std::string& text, size_t size) {
    for (size_t i = strings_.size(); i-- > 0;) {
      if (strings_[i].capacity() < size) continue;
      text.swap(strings_[i]);
      strings_[i].swap(strings_.back());
      strings_.pop_back();
      return;
    }
  }

  // The capacity of an empty std::string: what it holds without the heap.
  static inline const size_t kInline = std::string().capacity();

 private:
  std::vector<std::vector<Header>> vectors_;
  std::vector<std::string> strings_;
};

// Trivially destructible, so still readable while the thread's other objects are destroyed.
thread_local bool tl_stash_gone = false;
thread_local HeaderStash tl_stash;

HeaderStash::~HeaderStash() { tl_stash_gone = true; }

}  // namespace

HeaderList& HeaderList::operator=(HeaderList&& other) noexcept {
  if (this != &other) {
    clear();
    fields_.swap(other.fields_);
  }
  return *this;
}

HeaderList::~HeaderList() {
  if (!tl_stash_gone) tl_stash.keep(fields_);
}

void HeaderList::clear() {
  if (tl_stash_gone) {
    fields_.clear();
    return;
  }
  for (Header& field : fields_) {
    tl_stash.keepString(field.name);
    tl_stash.keepString(field.value);
  }
  fields_.clear();
}

void HeaderList::reserveRecycled(size_t count) {
  if (fields_.capacity() >= count) return;
  if (fields_.empty() && fields_.capacity() == 0 && !tl_stash_gone) tl_stash.take(fields_);
  if (fields_.capacity() < count) fields_.reserve(count);
}

Header& HeaderList::addRecycled(std::string_view name) {
  fields_.emplace_back();
  appendRecycled(fields_.back().name, name);
  return fields_.back();
}

void HeaderList::appendRecycled(std::string& text, std::string_view piece) {
  if (text.empty() && piece.size() > HeaderStash::kInline && text.capacity() < piece.size() && !tl_stash_gone) {
    tl_stash.take(text, piece.size());
  }
  text.append(piece);
}

void HeaderList::recycle(std::string& text) {
  if (!tl_stash_gone) tl_stash.keepString(text);
}

void HeaderList::set(std::string_view name, std::string value) {
  remove(name);
  add(std::string(name), std::move(value));
}

size_t HeaderList::remove(std::string_view name) {
  size_t before = fields_.size();
  std::erase_if(fields_, [&](const Header& field) { return equalsIgnoreCase(field.name, name); });
  return before - fields_.size();
}

const std::string* HeaderList::find(std::string_view name) const {
  for (const Header& field : fields_) {
    if (equalsIgnoreCase(field.name, name)) return &field.value;
  }
  return nullptr;
}

bool HeaderList::hasToken(std::string_view name, std::string_view token) const {
  bool found = false;
  for (const Header& field : fields_) {
    if (!equalsIgnoreCase(field.name, name)) continue;
    forEachListElement(field.value, [&](std::string_view element) {
      if (equalsIgnoreCase(element, token)) found = true;
    });
  }
  return found;
}

bool RequestHead::isIdempotent() const {
  // RFC 9110 section 9.2.2.
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

std::string_view RequestHead::path() const {
  std::string_view view = target;
  return view.substr(0, view.find('?'));
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void removeHopByHopHeaders(HeaderList& headers) {
  static constexpr std::string_view kHopByHop[] = {
      "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
  std::vector<Header>& fields = headers.fields();
  // Options of Connection fields are hop-by-hop too, but an option may not strip the framing
  // or the routing of the message.
  auto named = [&](std::string_view name) {
    if (equalsIgnoreCase(name, "Content-Length") || equalsIgnoreCase(name, "Host")) return false;
    bool found = false;
    for (const Header& field : fields) {
      if (field.name.size() != 10 || !equalsIgnoreCase(field.name, "Connection")) continue;
      forEachListElement(field.value, [&](std::string_view element) { found = found || equalsIgnoreCase(element, name); });
    }
    return found;
  };
  auto is_hop_by_hop = [&](const Header& field) {
    for (std::string_view name : kHopByHop) {
      if (equalsIgnoreCase(field.name, name)) return true;
    }
    return named(field.name);
  };
  // Decide for every field before erasing any: the options are read from Connection values,
  // which go too. On the stack for the heads the limits allow, in a vector beyond.
  constexpr size_t kOnStack = 256;
  bool on_stack[kOnStack];
  std::vector<bool> on_heap;
  if (fields.size() > kOnStack) on_heap.resize(fields.size());
  auto drop = [&](size_t i) -> bool { return fields.size() > kOnStack ? on_heap[i] : on_stack[i]; };
  bool any = false;
  for (size_t i = 0; i < fields.size(); ++i) {
    bool hop = is_hop_by_hop(fields[i]);
    if (fields.size() > kOnStack) {
      on_heap[i] = hop;
    } else {
      on_stack[i] = hop;
    }
    any = any || hop;
  }
  if (!any) return;
  size_t kept = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (drop(i)) continue;
    if (kept != i) fields[kept] = std::move(fields[i]);
    ++kept;
  }
  fields.resize(kept);
}

namespace {

void appendFields(std::string& out, const HeaderList& headers) {
  for (const Header& field : headers.fields()) {
    out.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  out.append("\r\n");
}

size_t fieldsSize(const HeaderList& headers) {
  size_t total = 2;
  for (const Header& field : headers.fields()) total += field.name.size() + field.value.size() + 4;
  return total;
}

}  // namespace

std::string serializeRequestHead(const RequestHead& head) {
  std::string out;
  out.reserve(head.method.size() + head.target.size() + 12 + fieldsSize(head.headers));
  out.append(head.method).append(" ").append(head.target).append(head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  appendFields(out, head.headers);
  return out;
}

RequestHead withFramingFields(RequestHead head) {
  head.headers.remove("Content-Length");
  head.headers.remove("Transfer-Encoding");
  if (head.framing.chunked) {
    head.headers.add("Transfer-Encoding", "chunked");
  } else if (head.framing.content_length) {
    head.headers.add("Content-Length", std::to_string(*head.framing.content_length));
  }
  return head;
}

std::string serializeFramedRequestHead(const RequestHead& head) {
  if (!head.framing.chunked && !head.framing.content_length) return serializeRequestHead(head);
  return serializeRequestHead(withFramingFields(head));
}

std::string chunkSizeLine(size_t size) {
  char text[24];
  int length = std::snprintf(text, sizeof text, "%zx\r\n", size);
  return std::string(text, static_cast<size_t>(length));
}

std::string serializeResponseHead(const ResponseHead& head) {
  std::string out;
  appendResponseHead(head, &out);
  return out;
}

void appendResponseHead(const ResponseHead& head, std::string* out) {
  std::string_view reason = head.reason.empty() ? reasonPhrase(head.status) : std::string_view(head.reason);
  out->reserve(out->size() + 16 + reason.size() + fieldsSize(head.headers));
  char status[16];
  int length = std::snprintf(status, sizeof status, "%d ", head.status);
  out->append(head.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ").append(status, static_cast<size_t>(length));
  out->append(reason).append("\r\n");
  appendFields(*out, head.headers);
}

std::string_view trimOws(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace stickyproxy
