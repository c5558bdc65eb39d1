#include "proxy/core/response_compressor.h"

#include <algorithm>

namespace stickyproxy {

namespace {

// The media type of a Content-Type value, without parameters, in lower case.
std::string mediaType(std::string_view content_type) {
  std::string type(trimOws(content_type.substr(0, content_type.find(';'))));
  for (char& c : type) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return type;
}

// Adds `token` to the comma-separated list of field `name` unless it (or "*") is there.
void addToken(HeaderList& headers, std::string_view name, std::string_view token) {
  if (headers.hasToken(name, token) || headers.hasToken(name, "*")) return;
  const std::string* existing = headers.find(name);
  if (existing == nullptr || trimOws(*existing).empty()) {
    headers.set(name, std::string(token));
  } else {
    headers.set(name, *existing + ", " + std::string(token));
  }
}

}  // namespace

std::string_view ResponseCompressor::skipReason(const CompressionConfig& config, const RequestHead& request,
                                                const ResponseHead& response) {
  if (!config.enabled) return "disabled";
  if (request.method == "HEAD") return "HEAD";
  if (response.status < 200 || response.status >= 300 || response.status == 204 || response.status == 206) {
    return "status";  // only whole bodies of successful answers; errors stay as the worker made them
  }
  if (!response.framing.hasBody()) return "no body";
  if (!acceptsGzip(request.headers.find("Accept-Encoding"))) return "client";
  if (const std::string* encoding = response.headers.find("Content-Encoding");
      encoding != nullptr && !equalsIgnoreCase(trimOws(*encoding), "identity")) {
    return "encoded";
  }
  if (response.headers.hasToken("Cache-Control", "no-transform")) return "no-transform";
  if (response.headers.find("Content-Range") != nullptr) return "range";
  const std::string* content_type = response.headers.find("Content-Type");
  std::string type = content_type == nullptr ? std::string() : mediaType(*content_type);
  // An event stream must reach the client event by event; deflate would hold events back.
  if (type == "text/event-stream") return "event stream";
  if (std::find(config.types.begin(), config.types.end(), type) == config.types.end()) return "type";
  if (response.framing.content_length && *response.framing.content_length < config.min_size) return "small";
  return "";
}

thread_local size_t ResponseCompressor::active_ = 0;

std::unique_ptr<ResponseCompressor> ResponseCompressor::start(const CompressionConfig& config,
                                                              const RequestHead& request, ResponseHead* response,
                                                              SlabPool* slabs) {
  if (!skipReason(config, request, *response).empty()) return nullptr;
  if (active_ >= config.max_streams) return nullptr;  // at the ceiling: this one goes as it is
  response->headers.remove("Content-Length");
  response->headers.remove("Content-Encoding");
  response->framing.content_length.reset();
  response->headers.addRecycled("Content-Encoding").value = "gzip";
  addToken(response->headers, "Vary", "Accept-Encoding");
  // Another representation: a strong validator would claim byte equality with the original.
  if (const std::string* etag = response->headers.find("ETag"); etag != nullptr && !etag->starts_with("W/")) {
    response->headers.set("ETag", "W/" + *etag);
  }
  return std::make_unique<ResponseCompressor>(static_cast<int>(config.level), slabs);
}

ResponseCompressor::~ResponseCompressor() {
  --active_;
  if (out_) slabs_->giveBack(std::move(out_));
}

namespace {
// Deflate writes in blocks; less room than this only makes more, smaller writes.
constexpr size_t kMinRoom = 4096;
}  // namespace

bool ResponseCompressor::feed(const Bytes& data, const Send& send) { return run(data.view(), false, send); }

bool ResponseCompressor::finish(const Send& send) { return run({}, true, send); }

bool ResponseCompressor::run(std::string_view input, bool finish, const Send& send) {
  if (failed_) return false;
  GzipEncoder::Step step;
  do {
    // Room for all of it: level 0 finds matches only within what one step takes.
    makeRoom(std::clamp<size_t>(input.size() / 8 * 9 + GzipEncoder::kMinStepRoom, kMinRoom, Slab::kDefaultSize));
    char* at = out_->data() + used_;
    step = encoder_.deflateInto(&input, finish, at, out_->capacity() - used_);
    if (step.written > 0) {
      used_ += step.written;
      send(Bytes(out_, at, step.written));
    }
  } while (step.ok && step.more);
  failed_ = !step.ok;
  return step.ok;
}

void ResponseCompressor::makeRoom(size_t wanted) {
  if (out_ && out_.use_count() == 1) {
    used_ = 0;  // everything sent has left: the slab is all ours again
    return;
  }
  if (out_ && out_->capacity() - used_ >= wanted) return;
  if (out_) slabs_->giveBack(std::move(out_));
  out_ = slabs_->take();
  used_ = 0;
}

}  // namespace stickyproxy
