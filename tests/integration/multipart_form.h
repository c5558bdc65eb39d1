// A multipart/form-data request body built in memory, for upload tests.
#pragma once

#include <string>
#include <string_view>

namespace stickyproxy::integration {

// Parts are written in the order they are added, as browsers send them (the backend's chunk
// route needs its text fields before the file part).
class MultipartForm {
 public:
  // A text field.
  MultipartForm& field(std::string_view name, std::string_view value);
  // A file part named `filename`, with `content` as its bytes.
  MultipartForm& file(std::string_view name, std::string_view filename, std::string_view content,
                      std::string_view content_type = "application/octet-stream");

  // "multipart/form-data; boundary=...", for the Content-Type header.
  std::string contentType() const;
  // The parts and the closing delimiter. Throws HarnessError when a part's bytes happen to
  // contain the boundary (they would end the part early).
  std::string body() const;

 private:
  static constexpr std::string_view kBoundary = "----stickyproxy-it-boundary-5f2a91c3e07d";
  void openPart(std::string_view disposition, std::string_view content_type);
  void checkContent(std::string_view content) const;

  std::string body_;
};

}  // namespace stickyproxy::integration
