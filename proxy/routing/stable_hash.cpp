#include "proxy/routing/stable_hash.h"

#include <xxhash.h>

namespace stickyproxy {

namespace {
constexpr XXH64_hash_t kSeed = 0;
}  // namespace

uint64_t stableHash(std::string_view data) {
  return XXH64(data.data(), data.size(), kSeed);
}

}  // namespace stickyproxy
