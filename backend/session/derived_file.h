// Files the app can make again from what it keeps durably (map pages drawn from a session's
// data and analysis, a session's map position): written so a reader sees the old file or the
// new one whole, without paying for durability on every request.
#pragma once

#include <string>
#include <string_view>

namespace stickyproxy::backend {

// Replaces `path` with `content` through "<path>.tmp" and a rename, without fsync: after a
// crash of the machine (not of the process) the file may be the old one, or empty. Use only for
// files whose loss costs a redraw. Returns false with a message naming the file in `error`.
bool writeDerivedFile(const std::string& path, std::string_view content, std::string* error);

}  // namespace stickyproxy::backend
