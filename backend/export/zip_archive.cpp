#include "backend/export/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string_view>

#include <zip.h>

#include "backend/data/text_util.h"
#include "proxy/net/file_util.h"

namespace stickyproxy::backend {
namespace {

// What unzip gives the extracted files: a regular file, rw-r--r--.
constexpr zip_uint32_t kEntryAttributes = 0100644u << 16;

// An empty archive is its end-of-central-directory record alone. libzip will not write one: it
// deletes the file instead when closing an archive without entries.
constexpr std::string_view kEmptyZip("PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22);

struct ZipDiscarder {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscarder>;

// Why `name` may not name an entry, or empty when it may.
std::string badNameReason(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name == "." || name == "..") return "names a directory";
  for (char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return "contains a path separator";
    if (c == ':') return "contains ':' (a drive letter on Windows)";
    if (byte < 0x20 || byte == 0x7F) return "contains a control character";
  }
  if (!isValidUtf8(name)) return "is not valid UTF-8";
  return {};
}

DataStatus validateNames(const std::vector<ZipEntry>& entries) {
  std::set<std::string_view> seen;
  for (const ZipEntry& entry : entries) {
    const std::string reason = badNameReason(entry.name);
    if (!reason.empty()) {
      return DataStatus::error(DataError::kUnsafeZipEntry,
                               "The zip entry name '" + printableAscii(entry.name) + "' " + reason);
    }
    if (!seen.insert(entry.name).second) {
      return DataStatus::error(DataError::kUnsafeZipEntry,
                               "The zip entry name '" + printableAscii(entry.name) + "' is used twice");
    }
  }
  return DataStatus();
}

DataStatus ioError(std::string message) { return DataStatus::error(DataError::kIo, std::move(message)); }

// Removes the temporary archive unless it was renamed into place.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  std::string path_;
};

// Checked here rather than left to libzip so the message names the file and the reason.
DataStatus checkReadable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError("Cannot read " + path + ": " + errnoText(errno));
  struct stat info {};
  const bool regular = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  ::close(fd);
  if (!regular) return ioError("Cannot read " + path + ": not a regular file");
  return DataStatus();
}

DataStatus addEntry(zip_t* archive, const ZipEntry& entry) {
  zip_source_t* source = nullptr;
  if (entry.source_path.empty()) {
    // The entries outlive zip_close(), so libzip may read `content` in place.
    source = zip_source_buffer(archive, entry.content.data(), entry.content.size(), 0);
  } else {
    DataStatus readable = checkReadable(entry.source_path);
    if (!readable.ok()) return readable;
    source = zip_source_file(archive, entry.source_path.c_str(), 0, -1);
  }
  if (source == nullptr) {
    return ioError("Cannot add '" + printableAscii(entry.name) + "' to the zip: " + zip_strerror(archive));
  }
  const zip_int64_t index = zip_file_add(archive, entry.name.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(source);
    return ioError("Cannot add '" + printableAscii(entry.name) + "' to the zip: " + zip_strerror(archive));
  }
  const auto at = static_cast<zip_uint64_t>(index);
  if (zip_set_file_compression(archive, at, ZIP_CM_DEFLATE, 0) != 0 ||
      zip_file_set_external_attributes(archive, at, 0, ZIP_OPSYS_UNIX, kEntryAttributes) != 0) {
    return ioError("Cannot set up the zip entry '" + printableAscii(entry.name) + "': " + zip_strerror(archive));
  }
  return DataStatus();
}

// Builds the archive at `path`, an existing empty file.
DataStatus buildArchive(const std::string& path, const std::vector<ZipEntry>& entries) {
  if (entries.empty()) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return ioError("Cannot write " + path + ": " + errnoText(errno));
    const bool written = writeAllTo(fd, kEmptyZip);
    const int err = errno;
    ::close(fd);
    return written ? DataStatus() : ioError("Cannot write " + path + ": " + errnoText(err));
  }
  int error_code = 0;
  // ZIP_TRUNCATE: the file exists (mkstemp made it) and is empty, not a zip to open.
  ZipPtr archive(zip_open(path.c_str(), ZIP_TRUNCATE, &error_code));
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, error_code);
    std::string message = "Cannot create " + path + ": " + zip_error_strerror(&error);
    zip_error_fini(&error);
    return ioError(std::move(message));
  }
  for (const ZipEntry& entry : entries) {
    DataStatus added = addEntry(archive.get(), entry);
    if (!added.ok()) return added;
  }
  // zip_close() compresses and writes everything; it frees the archive only when it succeeds.
  if (zip_close(archive.get()) != 0) return ioError("Cannot write " + path + ": " + zip_strerror(archive.get()));
  archive.release();
  return DataStatus();
}

DataStatus syncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError("Cannot reopen " + path + ": " + errnoText(errno));
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  return synced ? DataStatus() : ioError("Cannot flush " + path + ": " + errnoText(err));
}

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

DataStatus writeZipArchive(const std::string& dest_path, const std::vector<ZipEntry>& entries) {
  DataStatus names = validateNames(entries);
  if (!names.ok()) return names;

  const std::string dir = directoryOf(dest_path);
  const std::string base = dest_path.substr(dest_path.rfind('/') + 1);  // npos + 1 == 0
  // A unique name per call: two exports of one session may run at once.
  std::string pattern = dir + "/." + base + ".tmp-XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) return ioError("Cannot create a temporary file beside " + dest_path + ": " + errnoText(errno));
  ::close(fd);
  TempFile temp(pattern);

  DataStatus built = buildArchive(temp.path(), entries);
  if (!built.ok()) return built;
  DataStatus synced = syncFile(temp.path());
  if (!synced.ok()) return synced;
  if (::rename(temp.path().c_str(), dest_path.c_str()) != 0) {
    return ioError("Cannot rename " + temp.path() + " to " + dest_path + ": " + errnoText(errno));
  }
  temp.release();
  // The rename is durable once the directory entry reaches the disk; the archive itself is
  // complete either way, so a failure here is not reported.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return DataStatus();
}

}  // namespace stickyproxy::backend
