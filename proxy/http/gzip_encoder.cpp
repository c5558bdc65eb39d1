#include "proxy/http/gzip_encoder.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace stickyproxy {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer
constexpr int kMemLevel = 8;
constexpr size_t kBlockBytes = 16 * 1024;
constexpr size_t kFastBlockBytes = 256 * 1024;

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

// ---- level 0: one pass, deflate's fixed codes ----
//
// The technique of HAProxy's libslz: each position's next four bytes are hashed into a table
// that remembers one earlier position, a match is taken when those bytes repeat, and
// everything is written with the fixed Huffman codes of RFC 1951 (3.2.6), so nothing is
// counted or sorted and no block is held back. Matches reach only within the piece being
// compressed: the stream keeps no window, only the bits of an unfinished byte and the CRC.

// A code as the bit writer takes it: `bits` in the order they go out, `count` of them.
struct Code {
  uint32_t bits = 0;
  uint8_t count = 0;
};

// Huffman codes go out most significant bit first, everything else least significant first.
constexpr uint32_t reversed(uint32_t code, int count) {
  uint32_t out = 0;
  for (int i = 0; i < count; ++i) {
    out = (out << 1) | (code & 1);
    code >>= 1;
  }
  return out;
}

constexpr Code fixedLiteral(int symbol) {
  if (symbol < 144) return {reversed(0x30 + symbol, 8), 8};
  if (symbol < 256) return {reversed(0x190 + symbol - 144, 9), 9};
  if (symbol < 280) return {reversed(symbol - 256, 7), 7};
  return {reversed(0xC0 + symbol - 280, 8), 8};
}

struct FixedCodes {
  Code literal[257];           // bytes, and 256 the end of a block
  Code length[259];            // 3..258: the length symbol's code and its extra bits, together
  uint8_t distance_code[512];  // by distance - 1 below 256, else 256 + ((distance - 1) >> 7)
  uint32_t distance_base[30];
  uint8_t distance_extra[30];
  uint32_t distance_bits[30];  // each code's five bits, in the order they go out
};

constexpr FixedCodes makeFixedCodes() {
  FixedCodes codes{};
  for (int symbol = 0; symbol < 257; ++symbol) codes.literal[symbol] = fixedLiteral(symbol);
  int length = 3;
  for (int index = 0; index < 28; ++index) {  // symbols 257..284
    const int extra = index < 8 ? 0 : (index - 4) / 4;
    const Code symbol = fixedLiteral(257 + index);
    for (int step = 0; step < (1 << extra) && length < 258; ++step, ++length) {
      codes.length[length] = {symbol.bits | static_cast<uint32_t>(step) << symbol.count,
                              static_cast<uint8_t>(symbol.count + extra)};
    }
  }
  codes.length[258] = fixedLiteral(285);  // 258 has a symbol of its own, without extra bits
  uint32_t distance = 1;
  for (int code = 0; code < 30; ++code) {
    codes.distance_base[code] = distance;
    codes.distance_extra[code] = static_cast<uint8_t>(code < 4 ? 0 : (code - 2) / 2);
    codes.distance_bits[code] = reversed(static_cast<uint32_t>(code), 5);
    distance += 1u << codes.distance_extra[code];
  }
  for (int slot = 0; slot < 512; ++slot) {
    const uint32_t first = slot < 256 ? static_cast<uint32_t>(slot) + 1 : (static_cast<uint32_t>(slot - 256) << 7) + 1;
    int code = 0;
    while (code < 29 && codes.distance_base[code + 1] <= first) ++code;
    codes.distance_code[slot] = static_cast<uint8_t>(code);
  }
  return codes;
}

constexpr FixedCodes kFixed = makeFixedCodes();

// Bits into bytes, least significant first; whole 32-bit words are written as they fill.
struct BitWriter {
  uint8_t* out;
  uint64_t pending;
  int count;  // bits in `pending`, below 32 between calls

  void put(uint32_t bits, int n) {
    pending |= static_cast<uint64_t>(bits) << count;
    count += n;
    if (count >= 32) {
      const uint32_t word = static_cast<uint32_t>(pending);
      std::memcpy(out, &word, 4);
      out += 4;
      pending >>= 32;
      count -= 32;
    }
  }
  // Writes the whole bytes of what is pending; the last partial byte is padded with zeros.
  void flush() {
    while (count > 0) {
      *out++ = static_cast<uint8_t>(pending);
      pending >>= 8;
      count -= 8;
    }
    count = 0;
    pending = 0;
  }
};

// Words are loaded and written in the host's order, which must be deflate's.
static_assert(std::endian::native == std::endian::little, "level 0 is written for little-endian hosts");

constexpr int kHashBits = 14;
constexpr uint32_t kWindow = 32768;
constexpr size_t kMaxMatch = 258;
// The most one step compresses: positions of a piece stay far from wrapping 32 bits.
constexpr size_t kMaxPiece = size_t{1} << 30;

// Positions as numbers that never repeat on a thread: each piece gets the next range, so what
// the table remembers from an earlier piece (of any stream) falls below the current one's base.
struct MatchTable {
  std::unique_ptr<uint32_t[]> last = std::make_unique<uint32_t[]>(size_t{1} << kHashBits);
  uint32_t next = 1;

  // The base of a new piece of `size` bytes.
  uint32_t claim(size_t size) {
    if (next > UINT32_MAX / 2 - size) {
      std::memset(last.get(), 0, sizeof(uint32_t) << kHashBits);
      next = 1;
    }
    const uint32_t base = next;
    next += static_cast<uint32_t>(size);
    return base;
  }
};

thread_local std::unique_ptr<MatchTable> t_matches;

uint32_t load32(const uint8_t* at) {
  uint32_t word;
  std::memcpy(&word, at, 4);
  return word;
}

// How far the bytes at `a` and `b` agree, up to `limit`.
size_t matchLength(const uint8_t* a, const uint8_t* b, size_t limit) {
  size_t length = 0;
  while (length + 8 <= limit) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, a + length, 8);
    std::memcpy(&y, b + length, 8);
    if (x != y) return length + static_cast<size_t>(__builtin_ctzll(x ^ y) / 8);
    length += 8;
  }
  while (length < limit && a[length] == b[length]) ++length;
  return length;
}

// Writes `size` bytes at `in` as literals and matches into `bits`: at most 9 bits a byte.
void deflateFixed(const uint8_t* in, size_t size, BitWriter* bits) {
  if (!t_matches) t_matches = std::make_unique<MatchTable>();
  MatchTable& table = *t_matches;
  const uint32_t base = table.claim(size);
  size_t at = 0;
  while (at + 4 <= size) {
    const uint32_t word = load32(in + at);
    uint32_t& slot = table.last[(word * 2654435761u) >> (32 - kHashBits)];
    const uint32_t earlier = slot;
    const uint32_t here = base + static_cast<uint32_t>(at);
    slot = here;
    const uint32_t distance = here - earlier;
    if (earlier >= base && distance <= kWindow && load32(in + (earlier - base)) == word) {
      const size_t length =
          4 + matchLength(in + at + 4, in + (earlier - base) + 4, std::min(kMaxMatch, size - at) - 4);
      const Code& length_code = kFixed.length[length];
      bits->put(length_code.bits, length_code.count);
      const uint32_t back = distance - 1;
      const int code = kFixed.distance_code[back < 256 ? back : 256 + (back >> 7)];
      bits->put(kFixed.distance_bits[code] | (distance - kFixed.distance_base[code]) << 5, 5 + kFixed.distance_extra[code]);
      at += length;
    } else {
      bits->put(kFixed.literal[in[at]].bits, kFixed.literal[in[at]].count);
      ++at;
    }
  }
  for (; at < size; ++at) bits->put(kFixed.literal[in[at]].bits, kFixed.literal[in[at]].count);
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

namespace {

// Set as the thread's kept states go at its exit: an encoder that outlives them frees its own.
thread_local bool t_kept_gone = false;
thread_local uint64_t t_made = 0;

// The idle zlib states of one thread, the most recently kept last. Each is reset (deflateReset)
// before it is kept, so whoever takes it starts a new gzip member.
class KeptStreams {
 public:
  KeptStreams() { kept_.reserve(GzipEncoder::kMaxKeptStreams); }
  ~KeptStreams() {
    t_kept_gone = true;
    for (const Kept& kept : kept_) end(kept.stream);
  }
  KeptStreams(const KeptStreams&) = delete;
  KeptStreams& operator=(const KeptStreams&) = delete;

  // A kept state of `level`, or null.
  z_stream* take(int level) {
    freeIdle(std::chrono::steady_clock::now());
    for (size_t i = kept_.size(); i-- > 0;) {
      if (kept_[i].level != level) continue;
      z_stream* stream = kept_[i].stream;
      kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
      return stream;
    }
    return nullptr;
  }

  // Keeps `stream`, a live state of `level` in any condition, or frees it when it cannot be
  // reset or the thread keeps kMaxKeptStreams already.
  void keep(z_stream* stream, int level) {
    if (kept_.size() >= GzipEncoder::kMaxKeptStreams || deflateReset(stream) != Z_OK) {
      end(stream);
      return;
    }
    kept_.push_back({stream, level, std::chrono::steady_clock::now()});
  }

  size_t freeIdle(std::chrono::steady_clock::time_point now) {
    // Kept in order of keeping: the idle ones lead.
    size_t idle = 0;
    while (idle < kept_.size() && now - kept_[idle].since >= GzipEncoder::kKeptIdle) end(kept_[idle++].stream);
    kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(idle));
    return idle;
  }

  size_t size() const { return kept_.size(); }

  static void end(z_stream* stream) {
    deflateEnd(stream);
    delete stream;
  }

 private:
  struct Kept {
    z_stream* stream;
    int level;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Kept> kept_;
};

thread_local KeptStreams t_kept;

KeptStreams* threadKeptStreams() { return t_kept_gone ? nullptr : &t_kept; }

}  // namespace

GzipEncoder::GzipEncoder(int level) : level_(std::clamp(level, kFastLevel, 9)) {
  if (level_ == kFastLevel) {
    ready_ = true;
    return;
  }
  KeptStreams* kept = threadKeptStreams();
  stream_ = kept != nullptr ? kept->take(level_) : nullptr;
  if (stream_ == nullptr) {
    stream_ = new z_stream{};
    ++t_made;
    if (deflateInit2(stream_, level_, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete stream_;
      stream_ = nullptr;
    }
  }
  ready_ = stream_ != nullptr;
}

GzipEncoder::~GzipEncoder() {
  if (stream_ == nullptr) return;
  KeptStreams* kept = threadKeptStreams();
  if (kept != nullptr) {
    kept->keep(stream_, level_);
  } else {
    KeptStreams::end(stream_);
  }
}

GzipEncoder::Step GzipEncoder::deflateInto(std::string_view* input, bool finish, char* out, size_t capacity) {
  assert(capacity >= kMinStepRoom);
  if (level_ == kFastLevel) return deflateFixedInto(input, finish, out, capacity);
  Step step;
  if (!ready_) {
    step.ok = false;
    return step;
  }
  if (finished_) return step;
  // zlib counts in uInt: a very large piece goes in slices, and so does a very large buffer.
  const size_t slice = std::min<size_t>(input->size(), UINT32_MAX);
  const size_t room = std::min<size_t>(capacity, UINT32_MAX);
  stream_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input->data()));
  stream_->avail_in = static_cast<uInt>(slice);
  stream_->next_out = reinterpret_cast<Bytef*>(out);
  stream_->avail_out = static_cast<uInt>(room);
  const bool last_slice = slice == input->size();
  const int result = deflate(stream_, finish && last_slice ? Z_FINISH : Z_NO_FLUSH);
  const size_t taken = slice - stream_->avail_in;
  input->remove_prefix(taken);
  bytes_in_ += taken;
  step.written = room - stream_->avail_out;
  bytes_out_ += step.written;
  if (result == Z_STREAM_ERROR) {
    // The state is unusable: freed now, never kept.
    deflateEnd(stream_);
    delete stream_;
    stream_ = nullptr;
    ready_ = false;
    step.ok = false;
    return step;
  }
  if (result == Z_STREAM_END) {
    finished_ = true;
    return step;
  }
  // A full buffer may leave output waiting; a finish goes on until the end.
  step.more = !input->empty() || stream_->avail_out == 0 || finish;
  return step;
}

GzipEncoder::Step GzipEncoder::deflateFixedInto(std::string_view* input, bool finish, char* out, size_t capacity) {
  // Beyond 9 bits a byte: the bits pending from before, and the end of the stream.
  constexpr size_t kSlack = 32;
  Step step;
  if (finished_) return step;
  BitWriter bits{reinterpret_cast<uint8_t*>(out), pending_bits_, pending_count_};
  if (!started_) {
    // The member's header (deflate, no name, no time, Unix), then the one block of fixed codes
    // that holds the body: not the last (BFINAL 0), fixed codes (BTYPE 01).
    constexpr uint8_t kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    std::memcpy(bits.out, kHeader, sizeof kHeader);
    bits.out += sizeof kHeader;
    bits.put(0b010, 3);
    started_ = true;
  }
  const size_t room = capacity - static_cast<size_t>(bits.out - reinterpret_cast<uint8_t*>(out));
  const size_t take = room > kSlack ? std::min({input->size(), (room - kSlack) / 9 * 8, kMaxPiece}) : 0;
  if (take > 0) {
    const auto* data = reinterpret_cast<const uint8_t*>(input->data());
    crc_ = static_cast<uint32_t>(crc32_z(crc_, data, take));
    deflateFixed(data, take, &bits);
    input->remove_prefix(take);
    bytes_in_ += take;
  }
  if (finish && input->empty() && capacity - static_cast<size_t>(bits.out - reinterpret_cast<uint8_t*>(out)) >= kSlack) {
    bits.put(kFixed.literal[256].bits, kFixed.literal[256].count);
    bits.put(0b011, 3);  // an empty last block ends the deflate stream
    bits.put(kFixed.literal[256].bits, kFixed.literal[256].count);
    bits.flush();
    // The trailer: CRC-32 and the length modulo 2^32, little-endian.
    const uint32_t trailer[2] = {crc_, static_cast<uint32_t>(bytes_in_)};
    for (uint32_t word : trailer) {
      for (int shift = 0; shift < 32; shift += 8) *bits.out++ = static_cast<uint8_t>(word >> shift);
    }
    finished_ = true;
  }
  pending_bits_ = bits.pending;
  pending_count_ = bits.count;
  step.written = static_cast<size_t>(bits.out - reinterpret_cast<uint8_t*>(out));
  bytes_out_ += step.written;
  step.more = !finished_ && (!input->empty() || finish);
  return step;
}

bool GzipEncoder::feed(std::string_view input, std::string* out) {
  if (finished_) return false;
  // Level 0 finds matches only within what one step takes: room for much of the input at once.
  const size_t block = level_ == kFastLevel ? std::clamp(input.size() / 8 * 9 + kMinStepRoom, kBlockBytes, kFastBlockBytes)
                                            : kBlockBytes;
  return append(input, false, block, out);
}

bool GzipEncoder::finish(std::string* out) { return finished_ || append({}, true, kBlockBytes, out); }

bool GzipEncoder::append(std::string_view input, bool finish, size_t block, std::string* out) {
  Step step;
  do {
    const size_t before = out->size();
    out->resize(before + block);
    step = deflateInto(&input, finish, out->data() + before, block);
    out->resize(before + step.written);
  } while (step.ok && step.more);
  return step.ok;
}

size_t GzipEncoder::keptStreams() {
  KeptStreams* kept = threadKeptStreams();
  return kept != nullptr ? kept->size() : 0;
}

uint64_t GzipEncoder::streamsMade() { return t_made; }

size_t GzipEncoder::freeIdleStreams(std::chrono::steady_clock::time_point now) {
  KeptStreams* kept = threadKeptStreams();
  return kept != nullptr ? kept->freeIdle(now) : 0;
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
