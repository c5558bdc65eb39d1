#include "tests/integration/multipart_form.h"

#include "tests/integration/harness.h"

namespace stickyproxy::integration {

void MultipartForm::openPart(std::string_view disposition, std::string_view content_type) {
  body_.append("--").append(kBoundary).append("\r\n");
  body_.append("Content-Disposition: form-data; ").append(disposition).append("\r\n");
  if (!content_type.empty()) body_.append("Content-Type: ").append(content_type).append("\r\n");
  body_.append("\r\n");
}

void MultipartForm::checkContent(std::string_view content) const {
  if (content.find(kBoundary) != std::string_view::npos) {
    throw HarnessError("multipart part content contains the boundary " + std::string(kBoundary));
  }
}

MultipartForm& MultipartForm::field(std::string_view name, std::string_view value) {
  checkContent(value);
  openPart("name=\"" + std::string(name) + "\"", "");
  body_.append(value).append("\r\n");
  return *this;
}

MultipartForm& MultipartForm::file(std::string_view name, std::string_view filename, std::string_view content,
                                   std::string_view content_type) {
  checkContent(content);
  openPart("name=\"" + std::string(name) + "\"; filename=\"" + std::string(filename) + "\"", content_type);
  body_.append(content).append("\r\n");
  return *this;
}

std::string MultipartForm::contentType() const { return "multipart/form-data; boundary=" + std::string(kBoundary); }

std::string MultipartForm::body() const { return body_ + "--" + std::string(kBoundary) + "--\r\n"; }

}  // namespace stickyproxy::integration
