// A value or an error message: how the analysis reports bad input without throwing.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace stickyproxy::backend {

// Why an analysis step could not run, worded for the user (it ends up in the route's
// `"message"`), e.g. "Unknown variable 'pfprr'".
struct AnalysisError {
  std::string message;
};

// Holds either a T or an AnalysisError. Bad uploaded data is an ordinary outcome on the data
// path, so analysis functions return this instead of throwing. Reading value() of a failed
// Expected is a programming error (asserted).
template <typename T>
class [[nodiscard]] Expected {
 public:
  // Implicit on purpose, so a function can `return value;` or `return AnalysisError{...};`.
  Expected(T value) : value_(std::move(value)) {}
  Expected(AnalysisError error) : error_(std::move(error.message)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T& value() & {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }

  // The error message; empty when ok().
  const std::string& error() const { return error_; }

 private:
  std::optional<T> value_;
  std::string error_;
};

}  // namespace stickyproxy::backend
