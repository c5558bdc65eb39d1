#include "proxy/http/gzip_encoder.h"

#include <algorithm>
#include <cstdint>

namespace stickyproxy {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer
constexpr int kMemLevel = 8;
constexpr size_t kBlockBytes = 16 * 1024;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// RFC 9110 qvalue: "0" or "1" with up to three decimals. Anything else is not one.
bool parseQValue(std::string_view text, int* thousandths) {
  if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) return false;
  int value = (text[0] - '0') * 1000;
  if (text.size() > 1) {
    if (text[1] != '.') return false;
    int scale = 100;
    for (char c : text.substr(2)) {
      if (c < '0' || c > '9') return false;
      value += (c - '0') * scale;
      scale /= 10;
    }
  }
  if (value > 1000) return false;
  *thousandths = value;
  return true;
}

}  // namespace

bool acceptsGzip(const std::string* accept_encoding) {
  return accept_encoding != nullptr && acceptsGzip(std::string_view(*accept_encoding));
}

bool acceptsGzip(std::string_view accept_encoding) {
  // The q-value gzip was given, and the one "*" was given; -1 for not listed.
  int gzip_q = -1;
  int any_q = -1;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view element = accept_encoding.substr(0, comma);
    accept_encoding.remove_prefix(comma == std::string_view::npos ? accept_encoding.size() : comma + 1);
    const size_t semicolon = element.find(';');
    const std::string_view coding = trim(element.substr(0, semicolon));
    int q = 1000;
    std::string_view params = semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
    while (!params.empty()) {
      const size_t next = params.find(';');
      const std::string_view param = trim(params.substr(0, next));
      params.remove_prefix(next == std::string_view::npos ? params.size() : next + 1);
      const size_t equals = param.find('=');
      if (equals == std::string_view::npos || !equalsIgnoringCase(trim(param.substr(0, equals)), "q")) continue;
      if (!parseQValue(trim(param.substr(equals + 1)), &q)) q = 0;
    }
    if (equalsIgnoringCase(coding, "gzip") || equalsIgnoringCase(coding, "x-gzip")) {
      gzip_q = std::max(gzip_q, q);
    } else if (coding == "*") {
      any_q = std::max(any_q, q);
    }
  }
  return gzip_q >= 0 ? gzip_q > 0 : any_q > 0;
}

GzipEncoder::GzipEncoder(int level) {
  ready_ = deflateInit2(&stream_, std::clamp(level, 1, 9), Z_DEFLATED, kGzipWindowBits, kMemLevel,
                        Z_DEFAULT_STRATEGY) == Z_OK;
}

GzipEncoder::~GzipEncoder() {
  if (ready_) deflateEnd(&stream_);
}

bool GzipEncoder::run(std::string_view input, int flush, std::string* out) {
  if (!ready_) return false;
  // zlib counts in uInt: a very large piece goes in slices.
  while (true) {
    const size_t slice = std::min<size_t>(input.size(), UINT32_MAX);
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(slice);
    input.remove_prefix(slice);
    const int step_flush = input.empty() ? flush : Z_NO_FLUSH;
    int result = Z_OK;
    do {
      const size_t before = out->size();
      out->resize(before + kBlockBytes);
      stream_.next_out = reinterpret_cast<Bytef*>(out->data() + before);
      stream_.avail_out = static_cast<uInt>(kBlockBytes);
      result = deflate(&stream_, step_flush);
      const size_t produced = kBlockBytes - stream_.avail_out;
      out->resize(before + produced);
      bytes_out_ += produced;
      if (result == Z_STREAM_ERROR) {
        ready_ = false;
        deflateEnd(&stream_);
        return false;
      }
      // More output may be waiting while the block came back full; for Z_FINISH, until the end.
    } while (stream_.avail_out == 0 || (step_flush == Z_FINISH && result != Z_STREAM_END));
    if (input.empty()) return true;
  }
}

bool GzipEncoder::feed(std::string_view input, std::string* out) {
  if (finished_) return false;
  bytes_in_ += input.size();
  return run(input, Z_NO_FLUSH, out);
}

bool GzipEncoder::finish(std::string* out) {
  if (finished_) return true;
  finished_ = true;
  return run({}, Z_FINISH, out);
}

std::string GzipEncoder::compress(std::string_view input, int level) {
  GzipEncoder encoder(level);
  std::string out;
  out.reserve(input.size() / 4 + 64);
  if (!encoder.feed(input, &out) || !encoder.finish(&out)) return {};
  return out;
}

bool gunzip(std::string_view compressed, std::string* out) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) return false;
  out->clear();
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  int result = Z_OK;
  while (result == Z_OK) {
    char block[16 * 1024];
    stream.next_out = reinterpret_cast<Bytef*>(block);
    stream.avail_out = sizeof block;
    result = inflate(&stream, Z_NO_FLUSH);
    out->append(block, sizeof block - stream.avail_out);
  }
  const bool whole = result == Z_STREAM_END && stream.avail_in == 0;
  inflateEnd(&stream);
  return whole;
}

}  // namespace stickyproxy
