// What a server does with a new connection, as its admission policy (per-client limits) decides.
#pragma once

#include <cstdint>

namespace stickyproxy {

enum class ConnectionAdmission : uint8_t {
  kUncounted,  // no limit applies: served, not counted
  kAdmitted,   // within the limit: served, counted until released
  kOverLimit,  // over the limit: its first request is answered 429, then it closes (counted)
  kClose,      // far over the limit: closed at once without reading, not counted
};

}  // namespace stickyproxy
