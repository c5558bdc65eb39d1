#include "tests/integration/ward_dataset.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/integration/csv_text.h"
#include "tests/integration/harness.h"

namespace stickyproxy::integration {

WardDataset generateWardDataset(const std::string& parent_dir, uint64_t seed, size_t wards, size_t detail) {
  const std::string tag = "seed" + std::to_string(seed) + "-wards" + std::to_string(wards) + "-detail" +
                          std::to_string(detail);
  const std::string dir = parent_dir + "/" + tag;
  if (::mkdir(dir.c_str(), 0700) != 0) throw HarnessError("cannot create " + dir);
  ChildProcess tool({binaryPath("stickyproxy-gendata"), "--seed", std::to_string(seed), "--wards",
                     std::to_string(wards), "--detail", std::to_string(detail), "--out", dir},
                    dir + "/gendata.log");
  std::optional<int> status = tool.waitExit(60s);
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw HarnessError("stickyproxy-gendata " + tag + " " +
                       (status ? describeWaitStatus(*status) : std::string("did not finish in 60 s")) + ": " +
                       fileTail(dir + "/gendata.log"));
  }
  WardDataset dataset;
  dataset.seed = seed;
  dataset.wards = wards;
  dataset.csv = readFile(dir + "/wards.csv");
  dataset.zip = readFile(dir + "/wards_shapefile.zip");
  std::optional<std::vector<CsvRow>> rows = parseCsv(dataset.csv);
  std::optional<std::vector<std::string>> codes = rows ? csvColumn(*rows, "WardCode") : std::nullopt;
  if (!codes || dataset.zip.empty()) throw HarnessError("stickyproxy-gendata " + tag + " wrote no usable data in " + dir);
  dataset.ward_codes = std::move(*codes);
  return dataset;
}

}  // namespace stickyproxy::integration
