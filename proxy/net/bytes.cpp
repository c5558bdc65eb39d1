#include "proxy/net/bytes.h"

#include <cstring>

namespace stickyproxy {

// new char[] without value-initialisation: a 64 KiB read buffer is not worth zeroing.
Slab::Slab(size_t capacity) : data_(new char[capacity == 0 ? 1 : capacity]), capacity_(capacity) {}

std::shared_ptr<Slab> Slab::make(size_t capacity) { return std::make_shared<Slab>(capacity); }

std::shared_ptr<Slab> Slab::copyOf(std::string_view text) {
  auto slab = make(text.size());
  if (!text.empty()) std::memcpy(slab->data(), text.data(), text.size());
  return slab;
}

Bytes Bytes::copyOf(std::string_view text) {
  auto slab = Slab::copyOf(text);
  const char* begin = slab->data();
  return Bytes(std::move(slab), begin, text.size());
}

}  // namespace stickyproxy
