#include "backend/data/shapefile_zip.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>

#include <shapefil.h>
#include <zip.h>

#include "backend/data/text_util.h"
#include "proxy/net/file_util.h"
#include "proxy/http/http_message.h"

namespace stickyproxy::backend {
namespace {

constexpr size_t kCopyBlock = 64 * 1024;
constexpr size_t kMaxProjectionBytes = 64 * 1024;

struct ZipDiscarder {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscarder>;

struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

struct ShpCloser {
  void operator()(SHPInfo* handle) const { SHPClose(handle); }
};
using ShpPtr = std::unique_ptr<SHPInfo, ShpCloser>;

struct DbfCloser {
  void operator()(DBFInfo* handle) const { DBFClose(handle); }
};
using DbfPtr = std::unique_ptr<DBFInfo, DbfCloser>;

struct ShpObjectDestroyer {
  void operator()(SHPObject* object) const { SHPDestroyObject(object); }
};
using ShpObjectPtr = std::unique_ptr<SHPObject, ShpObjectDestroyer>;

std::string zipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// Why `name` is unsafe to extract, or empty when it is safe.
std::string unsafeNameReason(std::string_view name) {
  if (name.empty()) return "has an empty name";
  if (name.find('\\') != std::string_view::npos) return "uses backslashes in its path";
  if (name.front() == '/') return "is an absolute path";
  if (name.size() >= 2 && name[1] == ':' &&
      ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'))) {
    return "starts with a drive letter";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    if (name.substr(start, slash - start) == "..") return "climbs out of the archive with '..'";
    start = slash + 1;
  }
  return {};
}

// Directories, macOS resource forks and Finder metadata: never part of a shapefile.
bool isIgnoredEntry(std::string_view name) {
  if (name.back() == '/') return true;
  if (name.substr(0, 9) == "__MACOSX/" || name.find("/__MACOSX/") != std::string_view::npos) return true;
  const size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  return base.substr(0, 2) == "._" || base == ".DS_Store";
}

// A zip entry that belongs to the shapefile: its index, raw name, declared size, stem and extension.
struct Part {
  zip_uint64_t index = 0;
  std::string name;
  uint64_t size = 0;
  std::string stem;  // lower-case path without the extension
  std::string ext;   // lower-case, without the dot
};

// Temporary files of one extraction; removes whatever has not been renamed into place.
class TempFiles {
 public:
  ~TempFiles() {
    for (const std::string& path : paths_) ::unlink(path.c_str());
  }
  void add(std::string path) { paths_.push_back(std::move(path)); }
  void release(const std::string& path) { std::erase(paths_, path); }

 private:
  std::vector<std::string> paths_;
};

// Inflates entry `part` into a new temporary file in `dest_dir` and returns its path in `temp_path`.
// Counts bytes as they come: libzip trusts the declared size, we do not.
DataStatus extractPart(zip_t* archive, const Part& part, const std::string& dest_dir,
                       const ShapefileZipLimits& limits, uint64_t* total_written, TempFiles* temps,
                       std::string* temp_path) {
  std::string pattern = dest_dir + "/.upload-" + part.ext + ".tmp-XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) return DataStatus::error(DataError::kIo, "Cannot create a file to extract the shapefile into");
  temps->add(pattern);
  *temp_path = pattern;
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  ZipFilePtr file(zip_fopen_index(archive, part.index, 0));
  if (!file) {
    const int code = zip_error_code_zip(zip_get_error(archive));
    if (code == ZIP_ER_NOPASSWD || code == ZIP_ER_WRONGPASSWD || code == ZIP_ER_ENCRNOTSUPP) {
      return DataStatus::error(DataError::kCorruptZip, "The zip entry '" + printableAscii(part.name) +
                                                           "' is encrypted; upload an unencrypted zip");
    }
    return DataStatus::error(DataError::kCorruptZip, "The zip entry '" + printableAscii(part.name) +
                                                         "' cannot be read (" + zipErrorText(code) + ")");
  }
  std::vector<char> buffer(kCopyBlock);
  uint64_t count = 0;
  while (true) {
    const zip_int64_t got = zip_fread(file.get(), buffer.data(), buffer.size());
    if (got < 0) {
      return DataStatus::error(
          DataError::kCorruptZip,
          "The zip entry '" + printableAscii(part.name) + "' is corrupt (" + zip_file_strerror(file.get()) + ")");
    }
    if (got == 0) break;
    count += static_cast<uint64_t>(got);
    *total_written += static_cast<uint64_t>(got);
    if (count > part.size || count > limits.max_entry_bytes || *total_written > limits.max_total_bytes) {
      return DataStatus::error(DataError::kTooLarge,
                               "The zip entry '" + printableAscii(part.name) +
                                   "' expands beyond its declared size or the size limit "
                                   "(a zip bomb?); the upload was rejected");
    }
    if (!writeAllTo(fd, std::string_view(buffer.data(), static_cast<size_t>(got)))) {
      return DataStatus::error(DataError::kIo, "Writing the extracted shapefile failed");
    }
  }
  if (count != part.size) {
    return DataStatus::error(
        DataError::kCorruptZip,
        "The zip entry '" + printableAscii(part.name) + "' is shorter than its declared size (truncated zip?)");
  }
  if (::fsync(fd) != 0) return DataStatus::error(DataError::kIo, "Writing the extracted shapefile failed");
  return DataStatus();
}

void syncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Shapelib reports problems through a hook without a context pointer; keep the last message per
// thread so it can go into the DataStatus instead of stderr.
thread_local std::string t_shapelib_error;

void captureShapelibError(const char* message) { t_shapelib_error = message != nullptr ? message : ""; }

SAHooks quietHooks() {
  SAHooks hooks;
  SASetupDefaultHooks(&hooks);
  hooks.Error = captureShapelibError;
  return hooks;
}

std::string withShapelibDetail(std::string message) {
  if (!t_shapelib_error.empty()) message += " (" + t_shapelib_error + ")";
  return message;
}

std::string asUtf8(std::string_view text) {
  return isValidUtf8(text) ? std::string(text) : latin1ToUtf8(text);
}

bool isPolygonType(int type) {
  return type == SHPT_POLYGON || type == SHPT_POLYGONZ || type == SHPT_POLYGONM;
}

// Checks the .shx header before shapelib sees it. Shapelib (1.5) sizes its index from the file
// length the header declares, not from the file: a 100-byte .shx claiming 1.6 GB made it allocate
// about 3 GB for 200 million records, then fail to read them. The header (ESRI whitepaper: the
// length in 16-bit words, big-endian at byte 24) must declare at most the bytes the file has, and
// the records it implies (8 bytes each after the 100-byte header) must be within `max_records`.
DataStatus checkShxHeader(const std::string& shx_path, size_t max_records) {
  const auto unreadable = [](const std::string& why) {
    return DataStatus::error(DataError::kCorruptShapefile,
                             "The .shp/.shx files of the shapefile cannot be read (" + why + ")");
  };
  std::unique_ptr<std::FILE, FileCloser> shx(std::fopen(shx_path.c_str(), "rb"));
  if (!shx) return unreadable("the .shx cannot be opened");
  unsigned char header[100] = {};
  if (std::fread(header, 1, sizeof header, shx.get()) != sizeof header) {
    return unreadable("the .shx is shorter than its 100-byte header");
  }
  const long actual_bytes = std::fseek(shx.get(), 0, SEEK_END) == 0 ? std::ftell(shx.get()) : -1;
  const uint64_t declared_bytes = 2 * ((uint64_t{header[24]} << 24) | (uint64_t{header[25]} << 16) |
                                       (uint64_t{header[26]} << 8) | uint64_t{header[27]});
  if (actual_bytes < 0 || declared_bytes < sizeof header || declared_bytes > static_cast<uint64_t>(actual_bytes)) {
    return unreadable("the .shx declares " + std::to_string(declared_bytes) + " bytes but has " +
                      std::to_string(actual_bytes));
  }
  const uint64_t records = (declared_bytes - sizeof header) / 8;
  if (records > max_records) {
    return DataStatus::error(DataError::kTooLarge, "The shapefile has " + std::to_string(records) +
                                                       " records; at most " + std::to_string(max_records) +
                                                       " are accepted");
  }
  return DataStatus();
}

void extend(BoundingBox* box, const BoundingBox& other, bool first) {
  if (first) {
    *box = other;
    return;
  }
  box->min_x = std::min(box->min_x, other.min_x);
  box->min_y = std::min(box->min_y, other.min_y);
  box->max_x = std::max(box->max_x, other.max_x);
  box->max_y = std::max(box->max_y, other.max_y);
}

}  // namespace

DataStatus extractShapefileZip(const std::string& zip_path, const std::string& dest_dir,
                               const ShapefileZipOptions& options, ExtractedShapefile* out) {
  *out = ExtractedShapefile();
  assert(!options.basename.empty() && options.basename.find('/') == std::string::npos &&
         options.basename.front() != '.');
  const ShapefileZipLimits& limits = options.limits;
  int open_error = 0;
  ZipPtr archive(zip_open(zip_path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &open_error));
  if (!archive) {
    if (open_error == ZIP_ER_NOENT || open_error == ZIP_ER_OPEN || open_error == ZIP_ER_READ) {
      return DataStatus::error(DataError::kIo, "Cannot open the uploaded zip file");
    }
    return DataStatus::error(DataError::kCorruptZip, "The shapefile upload is not a readable zip archive (" +
                                                         zipErrorText(open_error) + ")");
  }
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  if (entries < 0)
    return DataStatus::error(DataError::kCorruptZip, "The zip archive's directory cannot be read");
  if (static_cast<uint64_t>(entries) > limits.max_entries) {
    return DataStatus::error(DataError::kTooLarge, "The zip holds " + std::to_string(entries) +
                                                       " entries; at most " +
                                                       std::to_string(limits.max_entries) + " are accepted");
  }

  uint64_t declared_total = 0;
  std::vector<Part> parts;
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    const auto index = static_cast<zip_uint64_t>(i);
    if (zip_stat_index(archive.get(), index, ZIP_FL_ENC_RAW, &stat) != 0 ||
        (stat.valid & ZIP_STAT_NAME) == 0 || (stat.valid & ZIP_STAT_SIZE) == 0) {
      return DataStatus::error(DataError::kCorruptZip,
                               "Entry " + std::to_string(i) + " of the zip cannot be read");
    }
    const std::string name = stat.name;
    if (std::string reason = unsafeNameReason(name); !reason.empty()) {
      return DataStatus::error(DataError::kUnsafeZipEntry,
                               "The zip entry '" + printableAscii(name) + "' " + reason +
                                   "; archives that could write outside their folder "
                                   "are rejected");
    }
    if (stat.size > limits.max_entry_bytes) {
      return DataStatus::error(DataError::kTooLarge, "The zip entry '" + printableAscii(name) + "' expands to " +
                                                         std::to_string(stat.size) + " bytes; at most " +
                                                         std::to_string(limits.max_entry_bytes) +
                                                         " per file are accepted");
    }
    declared_total += stat.size;
    if (declared_total > limits.max_total_bytes) {
      return DataStatus::error(DataError::kTooLarge, "The zip expands to more than " +
                                                         std::to_string(limits.max_total_bytes) +
                                                         " bytes; the upload was rejected");
    }
    if (isIgnoredEntry(name)) continue;
    const size_t slash = name.rfind('/');
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) continue;
    std::string ext = lowerAscii(std::string_view(name).substr(dot + 1));
    if (ext != "shp" && ext != "shx" && ext != "dbf" && ext != "prj" && ext != "cpg") continue;
    parts.push_back(
        {index, name, stat.size, lowerAscii(std::string_view(name).substr(0, dot)), std::move(ext)});
  }

  std::vector<const Part*> shps;
  for (const Part& part : parts) {
    if (part.ext == "shp") shps.push_back(&part);
  }
  if (shps.empty()) {
    return DataStatus::error(
        DataError::kMissingShapefilePart,
        "The zip holds no .shp file; zip the .shp, .shx and .dbf of the ward boundaries");
  }
  if (shps.size() > 1) {
    std::string names;
    for (const Part* shp : shps) names += (names.empty() ? "" : ", ") + printableAscii(shp->name);
    return DataStatus::error(DataError::kMissingShapefilePart,
                             "The zip holds " + std::to_string(shps.size()) + " shapefiles (" + names +
                                 "); upload one layer per zip");
  }
  const Part& shp = *shps.front();
  auto sibling = [&](std::string_view ext) -> const Part* {
    for (const Part& part : parts) {
      if (part.ext == ext && part.stem == shp.stem) return &part;
    }
    return nullptr;
  };
  const Part* shx = sibling("shx");
  const Part* dbf = sibling("dbf");
  std::string missing;
  if (shx == nullptr) missing = ".shx";
  if (dbf == nullptr) missing += missing.empty() ? ".dbf" : " and .dbf";
  if (!missing.empty()) {
    return DataStatus::error(DataError::kMissingShapefilePart,
                             "The zip has '" + printableAscii(shp.name) + "' but no matching " + missing +
                                 "; a shapefile needs its .shp, .shx and .dbf with the same name");
  }

  // Extract everything to temporary names first; rename only once every part is complete.
  std::vector<const Part*> order = {dbf, shx};
  if (const Part* prj = sibling("prj")) order.push_back(prj);
  if (const Part* cpg = sibling("cpg")) order.push_back(cpg);
  order.push_back(&shp);
  TempFiles temps;
  std::vector<std::string> temp_paths;
  uint64_t written = 0;
  for (const Part* part : order) {
    std::string temp_path;
    DataStatus status = extractPart(archive.get(), *part, dest_dir, limits, &written, &temps, &temp_path);
    if (!status.ok()) return status;
    temp_paths.push_back(std::move(temp_path));
  }

  const std::string base = dest_dir + "/" + options.basename + ".";
  ::unlink((base + "shp").c_str());  // until the new .shp lands, there is no complete set
  for (const char* optional_ext : {"prj", "cpg"}) {
    if (sibling(optional_ext) == nullptr) ::unlink((base + optional_ext).c_str());
  }
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string final_path = base + order[i]->ext;
    if (::rename(temp_paths[i].c_str(), final_path.c_str()) != 0) {
      return DataStatus::error(DataError::kIo, "Cannot move the extracted shapefile into place");
    }
    temps.release(temp_paths[i]);
    if (order[i]->ext == "shp") out->shp_path = final_path;
    if (order[i]->ext == "shx") out->shx_path = final_path;
    if (order[i]->ext == "dbf") out->dbf_path = final_path;
    if (order[i]->ext == "prj") out->prj_path = final_path;
    if (order[i]->ext == "cpg") out->cpg_path = final_path;
  }
  syncDirectory(dest_dir);
  out->source_name = shp.name;
  out->extracted_bytes = written;
  return DataStatus();
}

DataStatus ShapefileLayer::read(const ExtractedShapefile& files, const ShapefileLimits& limits,
                                ShapefileLayer* layer) {
  *layer = ShapefileLayer();
  ShapefileLayer result;
  if (DataStatus status = checkShxHeader(files.shx_path, limits.max_records); !status.ok()) return status;
  SAHooks hooks = quietHooks();
  t_shapelib_error.clear();
  ShpPtr shp(SHPOpenLL(files.shp_path.c_str(), "rb", &hooks));
  if (!shp) {
    return DataStatus::error(DataError::kCorruptShapefile,
                             withShapelibDetail("The .shp/.shx files of the shapefile cannot be read"));
  }
  int record_count = 0;
  int shape_type = 0;
  double min_bound[4] = {};
  double max_bound[4] = {};
  SHPGetInfo(shp.get(), &record_count, &shape_type, min_bound, max_bound);
  result.shape_type_name_ = SHPTypeName(shape_type);
  if (!isPolygonType(shape_type)) {
    return DataStatus::error(DataError::kNotPolygons,
                             "The shapefile holds " + result.shape_type_name_ +
                                 " shapes, not polygons; ward boundaries must be polygons");
  }
  if (record_count < 0 || static_cast<size_t>(record_count) > limits.max_records) {
    return DataStatus::error(DataError::kTooLarge, "The shapefile has " + std::to_string(record_count) +
                                                       " records; at most " +
                                                       std::to_string(limits.max_records) + " are accepted");
  }

  t_shapelib_error.clear();
  DbfPtr dbf(DBFOpenLL(files.dbf_path.c_str(), "rb", &hooks));
  if (!dbf) {
    return DataStatus::error(DataError::kCorruptShapefile,
                             withShapelibDetail("The .dbf file of the shapefile cannot be read"));
  }
  if (DBFGetRecordCount(dbf.get()) != record_count) {
    return DataStatus::error(DataError::kCorruptShapefile,
                             "The shapefile's .shp has " + std::to_string(record_count) +
                                 " shapes but its .dbf has " + std::to_string(DBFGetRecordCount(dbf.get())) +
                                 " attribute rows");
  }
  const int field_count = DBFGetFieldCount(dbf.get());
  for (int field = 0; field < field_count; ++field) {
    char name[XBASE_FLDNAME_LEN_READ + 1] = {};
    DBFGetFieldInfo(dbf.get(), field, name, nullptr, nullptr);
    result.field_names_.push_back(asUtf8(trimAscii(name)));
  }

  result.wards_.reserve(static_cast<size_t>(record_count));
  bool have_bounds = false;
  for (int record = 0; record < record_count; ++record) {
    t_shapelib_error.clear();
    ShpObjectPtr object(SHPReadObject(shp.get(), record));
    if (!object) {
      return DataStatus::error(
          DataError::kCorruptShapefile,
          withShapelibDetail("Shape " + std::to_string(record) + " of the shapefile is corrupt"));
    }
    WardShape ward;
    if (object->nSHPType != SHPT_NULL) {
      if (!isPolygonType(object->nSHPType)) {
        return DataStatus::error(
            DataError::kNotPolygons,
            "Shape " + std::to_string(record) + " is a " + SHPTypeName(object->nSHPType) + ", not a polygon");
      }
      const int vertices = object->nVertices;
      result.vertex_count_ += static_cast<size_t>(std::max(vertices, 0));
      if (result.vertex_count_ > limits.max_vertices) {
        return DataStatus::error(DataError::kTooLarge, "The shapefile has more than " +
                                                           std::to_string(limits.max_vertices) +
                                                           " vertices; simplify the boundaries");
      }
      bool first_point = true;
      for (int part = 0; part < object->nParts; ++part) {
        const int begin = object->panPartStart[part];
        const int end = part + 1 < object->nParts ? object->panPartStart[part + 1] : vertices;
        if (begin < 0 || end > vertices || begin > end) {
          return DataStatus::error(DataError::kCorruptShapefile,
                                   "Shape " + std::to_string(record) + " has inconsistent ring offsets");
        }
        if (begin == end) continue;
        std::vector<Point> ring;
        ring.reserve(static_cast<size_t>(end - begin) + 1);
        for (int v = begin; v < end; ++v) {
          const Point point{object->padfX[v], object->padfY[v]};
          if (!std::isfinite(point.x) || !std::isfinite(point.y)) {
            return DataStatus::error(
                DataError::kCorruptShapefile,
                "Shape " + std::to_string(record) + " has a coordinate that is not a number");
          }
          extend(&ward.bounds, BoundingBox{point.x, point.y, point.x, point.y}, first_point);
          first_point = false;
          ring.push_back(point);
        }
        if (!(ring.front() == ring.back())) ring.push_back(ring.front());
        ward.rings.push_back(std::move(ring));
      }
      if (!ward.rings.empty()) {
        extend(&result.bounds_, ward.bounds, !have_bounds);
        have_bounds = true;
      }
    }
    ward.attributes.reserve(static_cast<size_t>(field_count));
    for (int field = 0; field < field_count; ++field) {
      const char* value = DBFReadStringAttribute(dbf.get(), record, field);
      ward.attributes.push_back(asUtf8(trimAscii(value != nullptr ? value : "")));
    }
    result.wards_.push_back(std::move(ward));
  }

  if (!files.prj_path.empty()) {
    std::unique_ptr<std::FILE, FileCloser> prj(std::fopen(files.prj_path.c_str(), "rb"));
    if (prj) {
      std::string text(kMaxProjectionBytes, '\0');
      text.resize(std::fread(text.data(), 1, text.size(), prj.get()));
      result.projection_ = asUtf8(trimAscii(text));
    }
  }
  *layer = std::move(result);
  return DataStatus();
}

std::optional<size_t> ShapefileLayer::fieldIndex(std::string_view name) const {
  for (size_t i = 0; i < field_names_.size(); ++i) {
    if (equalsIgnoreCase(field_names_[i], name)) return i;
  }
  return std::nullopt;
}

std::string_view ShapefileLayer::attribute(size_t ward, std::string_view name) const {
  auto index = fieldIndex(name);
  if (!index) return {};
  return wards_[ward].attributes[*index];
}

void ShapefileLayer::dropGeometry() {
  for (WardShape& ward : wards_) std::vector<std::vector<Point>>().swap(ward.rings);
}

picojson::object ShapefileLayer::infoJson() const {
  picojson::object info;
  info["feature_count"] = picojson::value(static_cast<double>(wards_.size()));
  info["shape_type"] = picojson::value(shape_type_name_);
  picojson::array fields;
  for (const std::string& name : field_names_) fields.emplace_back(name);
  info["fields"] = picojson::value(std::move(fields));
  info["vertex_count"] = picojson::value(static_cast<double>(vertex_count_));
  picojson::object bounds;
  bounds["min_x"] = picojson::value(bounds_.min_x);
  bounds["min_y"] = picojson::value(bounds_.min_y);
  bounds["max_x"] = picojson::value(bounds_.max_x);
  bounds["max_y"] = picojson::value(bounds_.max_y);
  info["bounds"] = picojson::value(std::move(bounds));
  info["projection"] = picojson::value(projection_);
  return info;
}

DataStatus loadShapefileZip(const std::string& zip_path, const std::string& dest_dir,
                            const ShapefileZipOptions& options, const ShapefileLimits& limits,
                            ExtractedShapefile* files, ShapefileLayer* layer) {
  DataStatus status = extractShapefileZip(zip_path, dest_dir, options, files);
  if (!status.ok()) return status;
  return ShapefileLayer::read(*files, limits, layer);
}

}  // namespace stickyproxy::backend
