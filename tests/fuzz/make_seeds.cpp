// Writes the binary seeds of the "zip" and "shapefile" fuzz targets with the project's own code
// (the synthetic data generator of backend/data/synthetic_data.h) and libzip. Run once, by hand,
// when the seeds need remaking; its output is committed under tests/fuzz/corpus/:
//
//   build-fuzz/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <zip.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend/data/shapefile_zip.h"
#include "backend/data/synthetic_data.h"

namespace {

using namespace stickyproxy::backend;
namespace fs = std::filesystem;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// A zip holding `entries` as named; `deflate` false stores them uncompressed.
bool makeZip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries, bool deflate) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) return false;
  for (const auto& [name, content] : entries) {
    zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
    zip_int64_t at = source != nullptr ? zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_RAW) : -1;
    if (at < 0 || zip_set_file_compression(archive, static_cast<zip_uint64_t>(at), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0) {
      zip_discard(archive);
      return false;
    }
  }
  return zip_close(archive) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (e.g. tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::string corpus = argv[1];
  const std::string work = (fs::temp_directory_path() / "stickyproxy-make-seeds").string();
  fs::remove_all(work);
  fs::create_directories(work + "/out");
  fs::create_directories(corpus + "/zip");
  fs::create_directories(corpus + "/shapefile");

  for (size_t wards : {1, 3}) {
    SyntheticOptions options;
    options.wards = wards;
    options.vertices_per_edge = 0;
    const std::string name = "synthetic-" + std::to_string(wards) + "-ward" + (wards > 1 ? "s" : "");
    const std::string zip = work + "/" + name + ".zip";
    if (!writeSyntheticShapefileZip(makeSyntheticDataset(options), zip).ok()) return 1;
    ExtractedShapefile files;
    if (!extractShapefileZip(zip, work + "/out", {}, &files).ok()) return 1;
    const std::string shp = readFile(files.shp_path), shx = readFile(files.shx_path), dbf = readFile(files.dbf_path);
    const std::string prj = files.prj_path.empty() ? std::string() : readFile(files.prj_path);

    // The generator's own zip (deflated), and the same parts stored, in a folder, with the
    // clutter a Mac adds.
    fs::copy_file(zip, corpus + "/zip/" + name + ".zip", fs::copy_options::overwrite_existing);
    if (wards == 1) {
      if (!makeZip(corpus + "/zip/stored-in-folder.zip",
                   {{"Wards/", ""}, {"Wards/Wards.SHP", shp}, {"Wards/Wards.shx", shx}, {"Wards/Wards.dbf", dbf},
                    {"__MACOSX/Wards/._Wards.shp", "junk"}, {"readme.txt", "ward boundaries"}},
                   false)) {
        return 1;
      }
    }
    std::string layout = shp + "\n@@shx@@\n" + shx + "\n@@dbf@@\n" + dbf;
    if (!prj.empty()) layout += "\n@@prj@@\n" + prj;
    writeFile(corpus + "/shapefile/" + name, layout);
  }
  fs::remove_all(work);
  return 0;
}
