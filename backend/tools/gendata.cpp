// stickyproxy-gendata: writes a deterministic synthetic ward dataset (CSV + zipped shapefile) for
// demos, tests and load tools.
//
//   stickyproxy-gendata --seed 7 --wards 300 --out DIR [--detail N]
//
// writes DIR/wards.csv and DIR/wards_shapefile.zip and prints their sizes. --detail is the number
// of extra vertices along every ward edge (default 8: a zip of about 100 KB for 300 wards; 256
// with 500 wards gives over 5 MB). The same arguments always give the same bytes.
#include <sys/stat.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "backend/data/synthetic_data.h"

namespace {

int usage(const char* message) {
  if (message != nullptr) std::fprintf(stderr, "stickyproxy-gendata: %s\n", message);
  std::fprintf(stderr,
               "usage: stickyproxy-gendata [--seed N] [--wards N] [--detail N] --out DIR\n"
               "  --seed N    random seed (default 7); the same seed gives the same bytes\n"
               "  --wards N   number of wards, 1..20000 (default 300; 200..500 is realistic)\n"
               "  --detail N  extra vertices per ward edge, (default 8); grows the zip\n"
               "  --out DIR   existing directory for wards.csv and wards_shapefile.zip\n");
  return 2;
}

bool parseCount(std::string_view text, uint64_t max, uint64_t* value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end && *value <= max;
}

}  // namespace

int main(int argc, char** argv) {
  stickyproxy::backend::SyntheticOptions options;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") return usage(nullptr);
    if (i + 1 >= argc) return usage("every option takes a value");
    const std::string_view value = argv[++i];
    uint64_t number = 0;
    if (flag == "--seed") {
      if (!parseCount(value, UINT64_MAX, &number)) return usage("--seed takes a non-negative integer");
      options.seed = number;
    } else if (flag == "--wards") {
      if (!parseCount(value, 20000, &number) || number == 0)
        return usage("--wards takes an integer in 1..20000");
      options.wards = number;
    } else if (flag == "--detail" || flag == "--vertices-per-edge") {
      if (!parseCount(value, 100000, &number)) return usage("--detail takes a non-negative integer");
      options.vertices_per_edge = number;
    } else if (flag == "--out") {
      out_dir = value;
    } else {
      return usage("unknown option");
    }
  }
  if (out_dir.empty()) return usage("--out is required");
  if (options.wards * 4 * (options.vertices_per_edge + 1) > stickyproxy::backend::kMaxSyntheticVertices) {
    return usage("--wards x --detail is too large: the layer would pass 20 million vertices");
  }
  struct stat info {};
  if (::stat(out_dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    return usage("--out must be an existing directory");

  const auto started = std::chrono::steady_clock::now();
  stickyproxy::backend::SyntheticFiles files;
  const stickyproxy::backend::DataStatus status =
      stickyproxy::backend::writeSyntheticData(options, out_dir, &files);
  if (!status.ok()) {
    std::fprintf(stderr, "stickyproxy-gendata: %s\n", status.message().c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\t%llu bytes\n", files.csv_path.c_str(), static_cast<unsigned long long>(files.csv_bytes));
  std::printf("%s\t%llu bytes\n", files.zip_path.c_str(), static_cast<unsigned long long>(files.zip_bytes));
  std::printf("%zu wards, seed %llu, detail %zu, %.2f s\n", options.wards,
              static_cast<unsigned long long>(options.seed), options.vertices_per_edge, seconds);
  return 0;
}
