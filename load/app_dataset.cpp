#include "load/app_dataset.h"

#include <fstream>
#include <sstream>

namespace stickyproxy::load {

namespace {

std::optional<Bytes> readFile(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return Bytes::copyOf(text.str());
}

Bytes textBytes(std::string text) { return Bytes::copyOf(text); }

std::string partHead(std::string_view boundary, std::string_view name, std::string_view filename,
                     std::string_view content_type) {
  std::string head = "--" + std::string(boundary) + "\r\nContent-Disposition: form-data; name=\"" + std::string(name) +
                     "\"";
  if (!filename.empty()) head += "; filename=\"" + std::string(filename) + "\"";
  head += "\r\n";
  if (!content_type.empty()) head += "Content-Type: " + std::string(content_type) + "\r\n";
  return head + "\r\n";
}

std::string field(std::string_view boundary, std::string_view name, std::string_view value) {
  return partHead(boundary, name, {}, {}) + std::string(value) + "\r\n";
}

}  // namespace

std::optional<AppDataset> AppDataset::load(const std::string& dir, std::string* error) {
  AppDataset data;
  auto csv = readFile(dir + "/wards.csv", error);
  if (!csv) return std::nullopt;
  auto zip = readFile(dir + "/wards_shapefile.zip", error);
  if (!zip) return std::nullopt;
  data.csv_ = {"wards.csv", "csv_file", "csv", "text/csv", *csv};
  data.shapefile_ = {"wards_shapefile.zip", "shapefile", "shapefile", "application/zip", *zip};
  std::string_view text = csv->view();
  size_t pos = 0;
  std::vector<std::string> fields;
  if (!readCsvRecord(text, &pos, 2, &fields) || fields.size() < 2 || fields[1] != "WardCode") {
    *error = dir + "/wards.csv does not start with WardName,WardCode (made by stickyproxy-gendata?)";
    return std::nullopt;
  }
  while (readCsvRecord(text, &pos, 2, &fields)) {
    if (fields.size() >= 2 && !fields[1].empty()) data.ward_codes_.insert(fields[1]);
  }
  if (data.ward_codes_.empty()) {
    *error = dir + "/wards.csv holds no ward";
    return std::nullopt;
  }
  return data;
}

std::vector<Bytes> AppDataset::wholeBody(std::string_view boundary) const {
  return {textBytes(partHead(boundary, csv_.field, csv_.name, csv_.content_type)), csv_.content,
          textBytes("\r\n" + partHead(boundary, shapefile_.field, shapefile_.name, shapefile_.content_type)),
          shapefile_.content, textBytes("\r\n--" + std::string(boundary) + "--\r\n")};
}

size_t AppDataset::chunkCount(const DataFile& file) { return std::max<size_t>(1, (file.content.size + kChunkSize - 1) / kChunkSize); }

std::vector<Bytes> AppDataset::chunkBody(std::string_view boundary, std::string_view upload_id, const DataFile& file,
                                         size_t index) {
  size_t count = chunkCount(file);
  size_t offset = index * kChunkSize;
  size_t length = std::min(kChunkSize, file.content.size - std::min(offset, file.content.size));
  std::string head = field(boundary, "upload_id", upload_id) + field(boundary, "file_type", file.file_type) +
                     field(boundary, "chunk_index", std::to_string(index)) +
                     field(boundary, "total_chunks", std::to_string(count)) +
                     partHead(boundary, "chunk", file.name, "application/octet-stream");
  return {textBytes(std::move(head)), file.content.slice(offset, length),
          textBytes("\r\n--" + std::string(boundary) + "--\r\n")};
}

std::string AppDataset::checkWardRows(std::string_view csv) const {
  size_t pos = 0;
  std::vector<std::string> fields;
  if (!readCsvRecord(csv, &pos, 2, &fields) || fields.size() < 2 || fields[1] != "WardCode") {
    return "no WardName,WardCode header";
  }
  size_t rows = 0;
  std::unordered_set<std::string_view> seen;
  while (readCsvRecord(csv, &pos, 2, &fields)) {
    ++rows;
    if (fields.size() < 2) return "row " + std::to_string(rows) + " has no WardCode";
    // The app disambiguates a repeated code as "<WardCode>_<WardName>".
    std::string code = fields[1].substr(0, fields[1].find('_'));
    auto known = ward_codes_.find(code);
    if (known == ward_codes_.end()) return "ward " + code + " was never uploaded";
    seen.insert(*known);
  }
  if (rows != ward_codes_.size() || seen.size() != ward_codes_.size()) {
    return std::to_string(rows) + " rows for " + std::to_string(seen.size()) + " of the " +
           std::to_string(ward_codes_.size()) + " uploaded wards";
  }
  return {};
}

bool readCsvRecord(std::string_view text, size_t* pos, size_t count, std::vector<std::string>* fields) {
  fields->clear();
  size_t i = *pos;
  while (i < text.size() && (text[i] == '\r' || text[i] == '\n')) ++i;  // blank lines
  if (i >= text.size()) {
    *pos = i;
    return false;
  }
  std::string current;
  bool quoted = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        current += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        current += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',' || c == '\n' || c == '\r') {
      if (fields->size() < count) fields->push_back(std::move(current));
      current.clear();
      if (c != ',') break;
    } else {
      current += c;
    }
  }
  if (i >= text.size() && fields->size() < count) fields->push_back(std::move(current));
  while (i < text.size() && text[i] != '\n') ++i;
  *pos = i < text.size() ? i + 1 : i;
  return true;
}

}  // namespace stickyproxy::load
