#include "tests/integration/stored_zip.h"

#include <array>

namespace stickyproxy::integration {

namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndRecordSignature = 0x06054b50;
constexpr size_t kCentralHeaderBytes = 46;
constexpr size_t kEndRecordBytes = 22;
constexpr uint16_t kVersion = 20;      // 2.0: plain stored and deflated entries
constexpr uint16_t kDosDate = 0x0021;  // 1980-01-01, so the bytes never depend on the clock

void put16(std::string& out, uint16_t value) {
  out.push_back(static_cast<char>(value & 0xff));
  out.push_back(static_cast<char>(value >> 8));
}

void put32(std::string& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value & 0xffff));
  put16(out, static_cast<uint16_t>(value >> 16));
}

uint32_t get(std::string_view bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = width; i-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

// The fields local and central headers share, from "version needed" to "extra length".
void putCommonFields(std::string& out, const ZipEntryText& entry) {
  put16(out, kVersion);
  put16(out, 0);  // flags
  put16(out, 0);  // method: stored
  put16(out, 0);  // time
  put16(out, kDosDate);
  put32(out, crc32(entry.content));
  put32(out, static_cast<uint32_t>(entry.content.size()));  // compressed size
  put32(out, static_cast<uint32_t>(entry.content.size()));  // uncompressed size
  put16(out, static_cast<uint16_t>(entry.name.size()));
  put16(out, 0);  // extra field length
}

}  // namespace

uint32_t crc32(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> entries{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t value = i;
      for (int bit = 0; bit < 8; ++bit) value = (value & 1) != 0 ? 0xedb88320u ^ (value >> 1) : value >> 1;
      entries[i] = value;
    }
    return entries;
  }();
  uint32_t crc = 0xffffffffu;
  for (char c : bytes) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::string storedZip(const std::vector<ZipEntryText>& entries) {
  std::string out;
  std::string central;
  for (const ZipEntryText& entry : entries) {
    const auto offset = static_cast<uint32_t>(out.size());
    put32(out, kLocalHeaderSignature);
    putCommonFields(out, entry);
    out += entry.name;
    out += entry.content;

    put32(central, kCentralHeaderSignature);
    put16(central, kVersion);  // version made by
    putCommonFields(central, entry);
    put16(central, 0);  // comment length
    put16(central, 0);  // disk number
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, offset);
    central += entry.name;
  }
  const auto central_offset = static_cast<uint32_t>(out.size());
  out += central;
  put32(out, kEndRecordSignature);
  put16(out, 0);  // this disk
  put16(out, 0);  // the central directory's disk
  put16(out, static_cast<uint16_t>(entries.size()));
  put16(out, static_cast<uint16_t>(entries.size()));
  put32(out, static_cast<uint32_t>(central.size()));
  put32(out, central_offset);
  put16(out, 0);  // comment length
  return out;
}

std::optional<std::vector<std::string>> zipEntryNames(std::string_view bytes) {
  if (bytes.size() < kEndRecordBytes) return std::nullopt;
  // The end record is the last thing in the file, followed only by its comment (< 64 KiB).
  size_t end = bytes.size() - kEndRecordBytes;
  const size_t lowest = end > 0xffff ? end - 0xffff : 0;
  while (get(bytes, end, 4) != kEndRecordSignature) {
    if (end == lowest) return std::nullopt;
    --end;
  }
  const uint32_t count = get(bytes, end + 10, 2);
  size_t offset = get(bytes, end + 16, 4);
  std::vector<std::string> names;
  for (uint32_t i = 0; i < count; ++i) {
    if (offset + kCentralHeaderBytes > end || get(bytes, offset, 4) != kCentralHeaderSignature) return std::nullopt;
    const size_t name_length = get(bytes, offset + 28, 2);
    const size_t extra_length = get(bytes, offset + 30, 2);
    const size_t comment_length = get(bytes, offset + 32, 2);
    if (offset + kCentralHeaderBytes + name_length > end) return std::nullopt;
    names.emplace_back(bytes.substr(offset + kCentralHeaderBytes, name_length));
    offset += kCentralHeaderBytes + name_length + extra_length + comment_length;
  }
  return names;
}

}  // namespace stickyproxy::integration
