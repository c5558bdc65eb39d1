// Fuzz target "zip": an uploaded zip of ward boundaries, checked and extracted by
// extractShapefileZip() and, when that succeeds, read by ShapefileLayer::read()
// (backend/data/shapefile_zip.h): the whole upload path of loadShapefileZip().
//
// Input: the zip file.
//
// Invariants: whatever the zip, the target folder holds afterwards only files of the fixed names
// the extractor chooses (no temporary file, nothing named by the zip); on success the three
// required parts exist, the optional ones exist exactly when reported, and extracted_bytes is
// the sum of the sizes of the files extracted.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "backend/data/shapefile_zip.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stickyproxy;
  using namespace stickyproxy::fuzz;
  namespace fs = std::filesystem;
  const std::string zip_path = scratchDir() + "/upload.zip";
  const std::string dest = scratchDir() + "/extracted";
  writeFile(zip_path, std::string_view(reinterpret_cast<const char*>(data), size));
  resetDir(dest);

  backend::ShapefileZipOptions options;
  options.limits = backend::ShapefileZipLimits{4u << 20, 2u << 20, 64};
  backend::ExtractedShapefile files;
  const backend::DataStatus status = backend::extractShapefileZip(zip_path, dest, options, &files);

  const std::set<std::string> allowed = {"wards.shp", "wards.shx", "wards.dbf", "wards.prj", "wards.cpg"};
  uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(dest)) {
    const std::string name = entry.path().filename().string();
    FUZZ_CHECK(allowed.count(name) == 1 && entry.is_regular_file(),
               "left in the folder: " + name + (status.ok() ? "" : " (" + status.message() + ")"));
    total += entry.file_size();
  }
  if (!status.ok()) {
    FUZZ_CHECK(!status.message().empty(), "a failure without a message");
    return 0;
  }
  FUZZ_CHECK(fs::is_regular_file(files.shp_path) && fs::is_regular_file(files.shx_path) &&
                 fs::is_regular_file(files.dbf_path),
             "a required part is missing");
  FUZZ_CHECK(files.prj_path.empty() == !fs::exists(dest + "/wards.prj"), "the .prj is misreported");
  FUZZ_CHECK(files.cpg_path.empty() == !fs::exists(dest + "/wards.cpg"), "the .cpg is misreported");
  FUZZ_CHECK(files.extracted_bytes == total,
             "extracted_bytes " + std::to_string(files.extracted_bytes) + ", files " + std::to_string(total));
  FUZZ_CHECK(!files.source_name.empty(), "no source name");

  backend::ShapefileLayer layer;
  const backend::DataStatus read = backend::ShapefileLayer::read(files, backend::ShapefileLimits{1000, 100000}, &layer);
  if (read.ok()) (void)layer.infoJson();
  return 0;
}
