#include "proxy/core/upstream_head.h"

#include <charconv>

namespace stickyproxy {

namespace {

enum class Field { kOther, kDrop, kForwardedFor, kForwardedProto, kForwardedHost, kHost };

// What the writer does with a field of this name, Connection's options aside.
Field classify(std::string_view name) {
  static constexpr std::string_view kDropped[] = {"Connection", "Keep-Alive",     "Proxy-Connection",
                                                  "TE",         "Trailer",        "Transfer-Encoding",
                                                  "Upgrade",    "Content-Length", "Expect",
                                                  kPreviousWorkerHeader};
  if (name.size() == 4 && equalsIgnoreCase(name, "Host")) return Field::kHost;
  if (name.size() > 12 && (name[0] == 'X' || name[0] == 'x')) {
    if (equalsIgnoreCase(name, "X-Forwarded-For")) return Field::kForwardedFor;
    if (equalsIgnoreCase(name, "X-Forwarded-Proto")) return Field::kForwardedProto;
    if (equalsIgnoreCase(name, "X-Forwarded-Host")) return Field::kForwardedHost;
  }
  for (std::string_view dropped : kDropped) {
    if (equalsIgnoreCase(name, dropped)) return Field::kDrop;
  }
  return Field::kOther;
}

// True when a Connection field of `request` names `name` (never Content-Length or Host: an
// option may not strip the framing or the routing of the message).
bool namedByConnection(const RequestHead& request, std::string_view name) {
  for (const Header& field : request.headers.fields()) {
    if (field.name.size() != 10 || !equalsIgnoreCase(field.name, "Connection")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      size_t comma = list.find(',');
      if (equalsIgnoreCase(trimOws(list.substr(0, comma)), name)) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

void appendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void writeUpstreamHead(const RequestHead& request, const ForwardingContext& context, std::string* out) {
  const std::vector<Header>& fields = request.headers.fields();
  bool has_connection = false;
  size_t size = request.method.size() + request.target.size() + 160 + context.peer_ip.size();
  for (const Header& field : fields) {
    size += field.name.size() + field.value.size() + 4;
    has_connection = has_connection || (field.name.size() == 10 && equalsIgnoreCase(field.name, "Connection"));
  }
  out->reserve(out->size() + size);
  out->append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");

  const std::string* host = nullptr;
  bool proto_kept = false;
  bool host_kept = false;
  bool chain_started = false;
  std::string_view first_chain;  // the first X-Forwarded-For value, written at the end
  std::string chain;             // a second and later ones, joined after it
  for (const Header& field : fields) {
    Field kind = classify(field.name);
    if (kind == Field::kDrop) continue;
    if (kind == Field::kHost) {
      if (host == nullptr) host = &field.value;
    } else if (has_connection && namedByConnection(request, field.name)) {
      continue;
    }
    if (kind == Field::kForwardedFor) {
      if (!context.peer_trusted) continue;
      if (!chain_started) {
        first_chain = field.value;
        chain_started = true;
      } else {
        chain.append(", ").append(field.value);
      }
      continue;
    }
    if (kind == Field::kForwardedProto || kind == Field::kForwardedHost) {
      if (!context.peer_trusted) continue;
      (kind == Field::kForwardedProto ? proto_kept : host_kept) = true;
    }
    appendField(out, field.name, field.value);
  }

  out->append("X-Forwarded-For: ");
  if (chain_started) out->append(first_chain).append(chain).append(", ");
  out->append(context.peer_ip).append("\r\n");
  if (!proto_kept) appendField(out, "X-Forwarded-Proto", context.secure ? "https" : "http");
  if (!host_kept && host != nullptr) appendField(out, "X-Forwarded-Host", *host);
  if (!context.previous_worker.empty()) appendField(out, kPreviousWorkerHeader, context.previous_worker);
  if (context.close_after) out->append("Connection: close\r\n");
  // HTTP/1.1 needs a Host: an HTTP/1.0 client may have sent none.
  if (host == nullptr && !context.default_host.empty()) appendField(out, "Host", context.default_host);
  if (request.framing.chunked) {
    out->append("Transfer-Encoding: chunked\r\n");
  } else if (request.framing.content_length) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, *request.framing.content_length).ptr;
    appendField(out, "Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
  }
  out->append("\r\n");
}

}  // namespace stickyproxy
