// Writing the zip a user downloads: the result files of an analysis, bundled.
#pragma once

#include <string>
#include <vector>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

// One file of the archive.
struct ZipEntry {
  // The path inside the zip: a plain file name of our choosing ("summary.txt"), valid UTF-8,
  // without '/', '\\', ':' or control characters, and not "." or "..".
  std::string name;
  // The file whose bytes are copied in, or empty to take `content` instead. Read only while
  // writeZipArchive() runs, so it may be large: it is streamed, never loaded whole.
  std::string source_path;
  // The bytes of the entry when `source_path` is empty.
  std::string content;
};

// Writes a zip holding `entries` (deflated, in the given order) to `dest_path` atomically: the
// archive is built under a temporary name in the same directory (".<name>.tmp-XXXXXX"), fsynced,
// and renamed over `dest_path`, so a reader sees the old file or the complete new one. The file
// is created with mode 0600, like the rest of a session's files. An empty `entries` gives a valid
// empty zip.
// Fails without touching `dest_path` and without leaving a temporary file behind:
//   kUnsafeZipEntry when a name breaks the rules above or repeats (a bug on our side, checked
//   before anything is written); kIo when a source file cannot be read or the archive cannot be
//   written or renamed. The message names the entry or file at fault.
DataStatus writeZipArchive(const std::string& dest_path, const std::vector<ZipEntry>& entries);

}  // namespace stickyproxy::backend
