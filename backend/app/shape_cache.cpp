#include "backend/app/shape_cache.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>

namespace stickyproxy::backend {

ShapeCache& ShapeCache::instance() {
  static ShapeCache cache;
  return cache;
}

std::string ShapeCache::digestOf(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rbe"), &std::fclose);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!file || !context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) return {};
  char block[64 * 1024];
  size_t n = 0;
  while ((n = std::fread(block, 1, sizeof block, file.get())) > 0) {
    if (EVP_DigestUpdate(context.get(), block, n) != 1) return {};
  }
  if (std::ferror(file.get())) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context.get(), digest, &length) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return hex;
}

std::optional<ParsedShapes> ShapeCache::find(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(digest);
  if (it == entries_.end()) return std::nullopt;
  std::shared_ptr<const WardOutlines> outlines = it->second.outlines.lock();
  if (!outlines) {
    entries_.erase(it);
    return std::nullopt;
  }
  return ParsedShapes{it->second.layer, it->second.adjacency, std::move(outlines)};
}

void ShapeCache::insert(const std::string& digest, const ParsedShapes& shapes) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(entries_, [](const auto& entry) { return entry.second.outlines.expired(); });
  entries_[digest] = Entry{shapes.layer, shapes.adjacency, shapes.outlines};
}

size_t ShapeCache::liveEntries() {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t live = 0;
  for (const auto& entry : entries_) live += entry.second.outlines.expired() ? 0 : 1;
  return live;
}

}  // namespace stickyproxy::backend
