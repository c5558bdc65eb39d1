// How the bundled app's failures reach its clients. Every failure has a kind, and the kind alone
// picks the HTTP status: httpStatusOf() is the one place that maps them (input problems 4xx, the
// server's own I/O 500). Nothing chooses a status from a message's wording.
//
// A failure's message is what the client reads: plain words about the request or the data,
// never a server path, a session directory or the system's error text. Whatever helps an
// operator goes to the worker's log line instead (AppContext::serverFailure).
#pragma once

#include <string>
#include <string_view>

#include "backend/data/data_status.h"

namespace stickyproxy::backend {

enum class ErrorKind {
  kBadInput,  // 400: the request, or the data it uploaded, cannot be used as sent
  kNotFound,  // 404: no such session or file for this client
  kConflict,  // 409: the session changed under the operation; asking again will do
  kTooLarge,  // 413: a body, file or table over its limit
  kServerIo,  // 500: the server could not read or write its own files
};

// The HTTP status of a failure of `kind`.
int httpStatusOf(ErrorKind kind);

// The kind of a data-layer failure: kIo is the server's own, kTooLarge a limit, every other code
// something wrong with what the user sent.
ErrorKind errorKindOf(DataError code);

// A failure on its way to the client: `message` for the client, `detail` for the log only.
struct AppError {
  ErrorKind kind = ErrorKind::kServerIo;
  std::string message;
  std::string detail;
};

}  // namespace stickyproxy::backend
