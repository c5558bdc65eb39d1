#include "backend/app/multipart_parser.h"

#include <algorithm>
#include <functional>

namespace stickyproxy::backend {

namespace {

bool isBoundaryChar(char c) {
  // RFC 2046 bchars.
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// Splits `value` ("form-data; name=\"a\"; filename=\"b.csv\"") into its parameters and calls
// `visit(name, value)` for each, unquoting quoted values. Returns false on a malformed quote.
bool forEachParameter(std::string_view value, const std::function<void(std::string_view, std::string)>& visit) {
  size_t semicolon = value.find(';');
  if (semicolon == std::string_view::npos) return true;
  value.remove_prefix(semicolon + 1);
  while (!value.empty()) {
    value = trimOws(value);
    size_t equals = value.find('=');
    if (equals == std::string_view::npos) return trimOws(value).empty();
    std::string_view name = trimOws(value.substr(0, equals));
    value.remove_prefix(equals + 1);
    value = trimOws(value);
    std::string parameter;
    if (!value.empty() && value.front() == '"') {
      size_t i = 1;
      bool closed = false;
      for (; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) {
          parameter.push_back(value[++i]);
        } else if (value[i] == '"') {
          closed = true;
          break;
        } else {
          parameter.push_back(value[i]);
        }
      }
      if (!closed) return false;
      value.remove_prefix(i + 1);
      size_t next = value.find(';');
      value = next == std::string_view::npos ? std::string_view() : value.substr(next + 1);
    } else {
      size_t next = value.find(';');
      parameter = std::string(trimOws(value.substr(0, next)));
      value = next == std::string_view::npos ? std::string_view() : value.substr(next + 1);
    }
    visit(name, std::move(parameter));
  }
  return true;
}

// Length of the longest suffix of `data` that is a proper prefix of `delimiter`.
size_t partialMatchAtEnd(std::string_view data, std::string_view delimiter) {
  size_t longest = std::min(data.size(), delimiter.size() - 1);
  for (size_t length = longest; length > 0; --length) {
    if (data.substr(data.size() - length) == delimiter.substr(0, length)) return length;
  }
  return 0;
}

}  // namespace

std::optional<std::string> MultipartParser::boundaryOf(std::string_view content_type) {
  std::string_view type = trimOws(content_type.substr(0, content_type.find(';')));
  if (!equalsIgnoreCase(type, "multipart/form-data")) return std::nullopt;
  std::optional<std::string> boundary;
  bool well_formed = forEachParameter(content_type, [&](std::string_view name, std::string value) {
    if (equalsIgnoreCase(name, "boundary")) boundary = std::move(value);
  });
  if (!well_formed || !boundary || boundary->empty() || boundary->size() > 70 || boundary->back() == ' ') {
    return std::nullopt;
  }
  if (!std::all_of(boundary->begin(), boundary->end(), isBoundaryChar)) return std::nullopt;
  return boundary;
}

MultipartParser::MultipartParser(std::string_view boundary, Handler* handler, MultipartLimits limits)
    : delimiter_("\r\n--" + std::string(boundary)), handler_(handler), limits_(limits), carry_("\r\n") {
  // carry_ starts as a virtual CRLF so that a body opening with "--boundary" matches too.
}

bool MultipartParser::fail(std::string message) {
  state_ = State::kFailed;
  error_ = std::move(message);
  return false;
}

bool MultipartParser::emit(const Bytes& data) {
  if (state_ != State::kBody || data.empty()) return true;
  if (!handler_->onPartData(data)) {
    return fail(handler_->reject_reason.empty() ? "part rejected" : handler_->reject_reason);
  }
  return true;
}

size_t MultipartParser::scanForDelimiter(const Bytes& data, bool* found) {
  *found = false;
  std::string_view view = data.view();
  std::string_view delimiter = delimiter_;
  size_t consumed = 0;
  if (!carry_.empty()) {
    // A delimiter may start inside the held-back bytes: look at them with just enough input.
    std::string joined = carry_;
    joined.append(view.substr(0, delimiter.size()));
    size_t at = joined.find(delimiter);
    if (at != std::string::npos) {
      if (!emit(Bytes::copyOf(std::string_view(joined).substr(0, at)))) return 0;
      consumed = at + delimiter.size() - carry_.size();
      carry_.clear();
      *found = true;
      return consumed;
    }
    if (view.size() < delimiter.size()) {
      // Not enough input to decide: keep the part that may still begin the delimiter.
      size_t keep = partialMatchAtEnd(joined, delimiter);
      if (!emit(Bytes::copyOf(std::string_view(joined).substr(0, joined.size() - keep)))) return 0;
      carry_ = joined.substr(joined.size() - keep);
      return view.size();
    }
    if (!emit(Bytes::copyOf(carry_))) return 0;
    carry_.clear();
  }
  auto searcher = std::boyer_moore_horspool_searcher(delimiter.begin(), delimiter.end());
  auto match = std::search(view.begin(), view.end(), searcher);
  if (match != view.end()) {
    size_t at = static_cast<size_t>(match - view.begin());
    if (!emit(data.slice(0, at))) return 0;
    *found = true;
    return at + delimiter.size();
  }
  size_t keep = partialMatchAtEnd(view, delimiter);
  if (!emit(data.slice(0, view.size() - keep))) return 0;
  carry_.assign(view.substr(view.size() - keep));
  return view.size();
}

bool MultipartParser::parseHead() {
  Part part;
  std::string_view head = head_;
  while (!head.empty()) {
    size_t end = head.find("\r\n");
    std::string_view line = head.substr(0, end);
    head = end == std::string_view::npos ? std::string_view() : head.substr(end + 2);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed part header");
    part.headers.add(std::string(trimOws(line.substr(0, colon))), std::string(trimOws(line.substr(colon + 1))));
  }
  const std::string* disposition = part.headers.find("Content-Disposition");
  if (disposition == nullptr || !equalsIgnoreCase(trimOws(std::string_view(*disposition).substr(0, disposition->find(';'))), "form-data")) {
    return fail("part without Content-Disposition: form-data");
  }
  bool well_formed = forEachParameter(*disposition, [&](std::string_view name, std::string value) {
    if (equalsIgnoreCase(name, "name")) {
      part.name = std::move(value);
    } else if (equalsIgnoreCase(name, "filename")) {
      part.filename = std::move(value);
    }
  });
  if (!well_formed) return fail("malformed Content-Disposition");
  if (part.name.empty()) return fail("part without a name");
  const std::string* type = part.headers.find("Content-Type");
  part.content_type = type != nullptr ? *type : "text/plain";
  if (++parts_ > limits_.max_parts) return fail("too many parts");
  if (!handler_->onPartBegin(part)) return fail(handler_->reject_reason.empty() ? "part rejected" : handler_->reject_reason);
  return true;
}

bool MultipartParser::feed(const Bytes& input) {
  Bytes data = input;
  while (!data.empty()) {
    switch (state_) {
      case State::kFailed:
        return false;
      case State::kEpilogue:
        return true;  // ignored, per RFC 2046
      case State::kPreamble:
      case State::kBody: {
        bool found = false;
        size_t consumed = scanForDelimiter(data, &found);
        if (state_ == State::kFailed) return false;
        data = data.suffix(consumed);
        if (found) {
          if (state_ == State::kBody && !handler_->onPartEnd()) {
            return fail(handler_->reject_reason.empty() ? "part rejected" : handler_->reject_reason);
          }
          state_ = State::kAfterDelimiter;
          after_delimiter_.clear();
        }
        break;
      }
      case State::kAfterDelimiter: {
        // "--" closes the body; otherwise optional padding, then CRLF, then a part head.
        char c = data.data[0];
        data = data.suffix(1);
        after_delimiter_.push_back(c);
        if (after_delimiter_ == "--") {
          state_ = State::kEpilogue;
        } else if (after_delimiter_.size() > 64) {
          return fail("malformed boundary line");
        } else if (after_delimiter_.ends_with("\r\n")) {
          std::string_view padding(after_delimiter_.data(), after_delimiter_.size() - 2);
          if (padding.find_first_not_of(" \t") != std::string_view::npos) return fail("malformed boundary line");
          state_ = State::kHead;
          head_.clear();
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '-') {
          return fail("malformed boundary line");
        }
        break;
      }
      case State::kHead: {
        std::string_view view = data.view();
        size_t take = view.size();
        // The head ends at the first blank line; look across the piece boundary.
        size_t search_from = head_.size() >= 3 ? head_.size() - 3 : 0;
        head_.append(view);
        size_t end = head_.find("\r\n\r\n", search_from);
        bool empty_head = head_.starts_with("\r\n");
        if (empty_head) end = 0;
        if (end == std::string::npos) {
          // Up to three bytes at the end may begin the blank line and so not count against the
          // limit: whether a head at the limit fits must not depend on where the piece ended.
          size_t pending = 0;
          for (size_t n = std::min<size_t>(3, head_.size()); n > 0; --n) {
            if (std::string_view(head_).ends_with(std::string_view("\r\n\r").substr(0, n))) {
              pending = n;
              break;
            }
          }
          if (head_.size() - pending > limits_.max_part_head_bytes) return fail("part head too large");
          data = data.suffix(take);
          break;
        }
        size_t head_length = empty_head ? 0 : end;
        size_t terminator = empty_head ? 2 : 4;
        size_t used_from_piece = head_length + terminator - (head_.size() - view.size());
        head_.resize(head_length);
        if (head_.size() > limits_.max_part_head_bytes) return fail("part head too large");
        data = data.suffix(used_from_piece);
        if (!parseHead()) return false;
        state_ = State::kBody;
        break;
      }
    }
  }
  return state_ != State::kFailed;
}

bool MultipartParser::finish() {
  if (state_ == State::kEpilogue) return true;
  if (state_ != State::kFailed) fail("body ended before the closing boundary");
  return false;
}

}  // namespace stickyproxy::backend
