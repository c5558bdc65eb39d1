#include "backend/app/app_error.h"

namespace stickyproxy::backend {

int httpStatusOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kTooLarge:
      return 413;
    case ErrorKind::kServerIo:
      return 500;
  }
  return 500;
}

ErrorKind errorKindOf(DataError code) {
  switch (code) {
    case DataError::kIo:
      return ErrorKind::kServerIo;
    case DataError::kTooLarge:
      return ErrorKind::kTooLarge;
    case DataError::kOk:  // not a failure: callers map failed statuses only
    case DataError::kNotUtf8:
    case DataError::kEmptyFile:
    case DataError::kHeaderOnly:
    case DataError::kMalformedCsv:
    case DataError::kRaggedRow:
    case DataError::kDuplicateColumn:
    case DataError::kMissingColumns:
    case DataError::kCorruptZip:
    case DataError::kUnsafeZipEntry:
    case DataError::kMissingShapefilePart:
    case DataError::kNotPolygons:
    case DataError::kCorruptShapefile:
    case DataError::kBadAnalysisInput:
      return ErrorKind::kBadInput;
  }
  return ErrorKind::kBadInput;
}

}  // namespace stickyproxy::backend
