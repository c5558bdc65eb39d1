// Receiving a multipart/form-data upload straight to disk: file parts are written as they
// arrive (never held whole in memory), small text fields are collected.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backend/app/app_error.h"
#include "backend/app/multipart_parser.h"
#include "proxy/http/http_server.h"

namespace stickyproxy::backend {

struct ReceivedFile {
  std::string path;      // where it now is
  std::string filename;  // as the client named it: display only, never a path
  uint64_t bytes = 0;
};

struct ReceivedForm {
  bool ok = false;
  bool aborted = false;  // the client went away; nobody is listening for an answer
  AppError error;        // why, when !ok: kBadInput, kTooLarge, a router's kind, or kServerIo
  std::map<std::string, std::string, std::less<>> fields;
  std::map<std::string, ReceivedFile, std::less<>> files;
};

// Where a file part goes. Given the part and the text fields received before it, returns the
// destination path, or an empty string after setting `*reject` (kind, message for the user and,
// for the server's own failures, a detail for the log). The file is written to "<path>.tmp" and
// renamed to `path` when complete.
struct FileTarget {
  uint64_t max_bytes = 0;
  std::string path;
};
using FileRouter = std::function<FileTarget(const MultipartParser::Part& part,
                                            const std::map<std::string, std::string, std::less<>>& fields,
                                            AppError* reject)>;

// Attaches a receiver to `exchange` (whose Content-Type must carry `boundary`) and calls `done`
// exactly once on the loop thread: when the body ended, failed or the client went away. Text
// fields longer than 256 bytes, more than 16 of them, malformed bodies and parts `route` refuses
// stop the upload; partial files are removed then. The caller answers the request.
void receiveMultipart(const ServerExchangePtr& exchange, const std::string& boundary, FileRouter route,
                      std::function<void(ReceivedForm)> done);

}  // namespace stickyproxy::backend
