// Just enough of the zip format for tests: writing small archives whose entries are stored
// (not compressed), with any entry names, and listing the names inside an archive.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stickyproxy::integration {

struct ZipEntryText {
  std::string name;  // as written, unchecked: "../evil.shp" is fine here
  std::string content;
};

// A zip archive of `entries` in order: a local header and the stored bytes for each, then the
// central directory and its end record. No zip64, so keep it small.
std::string storedZip(const std::vector<ZipEntryText>& entries);

// The entry names of the archive `bytes`, in central-directory order, or nullopt when there is
// no well-formed end record and central directory (not a zip, truncated, zip64).
std::optional<std::vector<std::string>> zipEntryNames(std::string_view bytes);

// The CRC-32 (IEEE 802.3, as zip uses it) of `bytes`.
uint32_t crc32(std::string_view bytes);

}  // namespace stickyproxy::integration
