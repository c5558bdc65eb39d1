// Reference-counted byte buffers: the unit in which data moves through the proxy.
//
// A socket read lands in a Slab; the parser hands out Bytes views into it; the proxy queues
// those same views on the other side's socket. The slab lives until the last view is
// written, so a body crosses the proxy without being copied.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace stickyproxy {

// A fixed-size block of memory owned through std::shared_ptr.
class Slab {
 public:
  static constexpr size_t kDefaultSize = 64 * 1024;
  static std::shared_ptr<Slab> make(size_t capacity = kDefaultSize);
  // Copies `text` into a slab of exactly its size.
  static std::shared_ptr<Slab> copyOf(std::string_view text);

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }

  explicit Slab(size_t capacity);

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_;
};
using SlabPtr = std::shared_ptr<Slab>;

// A view of `size` bytes at `data` that keeps the memory it points into alive.
struct Bytes {
  SlabPtr owner;
  const char* data = nullptr;
  size_t size = 0;

  Bytes() = default;
  Bytes(SlabPtr owner_slab, const char* begin, size_t length)
      : owner(std::move(owner_slab)), data(begin), size(length) {}
  // Copies `text` into a new slab.
  static Bytes copyOf(std::string_view text);

  std::string_view view() const { return {data, size}; }
  bool empty() const { return size == 0; }
  // The sub-view [offset, offset + length), sharing the same owner.
  Bytes slice(size_t offset, size_t length) const { return Bytes(owner, data + offset, length); }
  Bytes suffix(size_t offset) const { return slice(offset, size - offset); }
};

}  // namespace stickyproxy
