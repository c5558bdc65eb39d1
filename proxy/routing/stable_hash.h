// The one hash function the proxy uses for anything that must agree across processes:
// ring points, routing keys, and the key hashes written to the session state file.
#pragma once

#include <cstdint>
#include <string_view>

namespace stickyproxy {

// XXH64 of `data` with seed 0 (Debian's libxxhash). The value is the same across processes,
// runs, machines and standard libraries, so it may be persisted and compared between them.
// Never use std::hash for these purposes: its values differ between standard libraries.
uint64_t stableHash(std::string_view data);

}  // namespace stickyproxy
