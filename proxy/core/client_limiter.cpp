#include "proxy/core/client_limiter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <string>

namespace stickyproxy {

namespace {
constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

ClientKey fromV6(const uint8_t* address) {
  ClientKey key;
  if (std::memcmp(address, kV4MappedPrefix, sizeof kV4MappedPrefix) == 0) {
    key.family = 4;
    std::memcpy(key.bytes, address + 12, 4);
  } else {
    key.family = 6;
    std::memcpy(key.bytes, address, 16);
  }
  return key;
}
// IPv6 clients are counted per /64, the block one subscriber usually gets: one per /128 would
// give a single host billions of buckets (and a way to churn the table).
ClientKey limitKey(const ClientKey& key) {
  ClientKey limited = key;
  if (limited.family == 6) std::memset(limited.bytes + 8, 0, 8);
  return limited;
}

}  // namespace

ClientKey ClientKey::fromSockaddr(const struct sockaddr* address) {
  ClientKey key;
  if (address == nullptr) return key;
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    key.family = 4;
    std::memcpy(key.bytes, &v4->sin_addr, 4);
  } else if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    key = fromV6(v6->sin6_addr.s6_addr);
  }
  return key;
}

std::optional<ClientKey> ClientKey::parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string copy(text);
  ClientKey key;
  if (inet_pton(AF_INET, copy.c_str(), key.bytes) == 1) {
    key.family = 4;
    return key;
  }
  uint8_t v6[16];
  if (inet_pton(AF_INET6, copy.c_str(), v6) == 1) return fromV6(v6);
  return std::nullopt;
}

bool ClientKey::operator==(const ClientKey& other) const {
  return family == other.family && std::memcmp(bytes, other.bytes, family == 4 ? 4 : 16) == 0;
}

size_t ClientKeyHash::operator()(const ClientKey& key) const {
  // FNV-1a over the address bytes: the keys are addresses, not attacker-chosen strings of any
  // length, and the table is bounded.
  uint64_t hash = 1469598103934665603ull ^ key.family;
  size_t length = key.family == 4 ? 4 : 16;
  for (size_t i = 0; i < length; ++i) {
    hash ^= key.bytes[i];
    hash *= 1099511628211ull;
  }
  return static_cast<size_t>(hash);
}

ClientLimiter::ClientLimiter(ClientLimits limits) : limits_(limits) {}

void ClientLimiter::setLimits(const ClientLimits& limits) {
  bool new_rate = limits.rate != limits_.rate || limits.rate_period != limits_.rate_period;
  limits_ = limits;
  if (!new_rate) return;
  auto now = Clock::now();
  for (List* list : {&busy_, &idle_}) {
    for (Entry& entry : *list) {
      entry.tokens = limits_.rate;
      entry.refilled = now;
    }
  }
}

void ClientLimiter::refill(Entry& entry, Clock::time_point now) const {
  if (limits_.rate == 0) return;
  double period = std::chrono::duration<double>(limits_.rate_period).count();
  double elapsed = std::chrono::duration<double>(now - entry.refilled).count();
  if (elapsed > 0) {
    entry.tokens = std::min<double>(limits_.rate, entry.tokens + elapsed * limits_.rate / period);
    entry.refilled = now;
  }
}

void ClientLimiter::expireIdle(Clock::time_point now) {
  while (!idle_.empty()) {
    const Entry& oldest = idle_.back();
    if (limits_.rate != 0 && now - oldest.seen < limits_.rate_period) break;
    index_.erase(oldest.key);
    idle_.pop_back();
  }
}

void ClientLimiter::touch(List::iterator entry, Clock::time_point now) {
  entry->seen = now;
  bool busy = entry->connections + entry->over_limit > 0;
  List& from = entry->busy ? busy_ : idle_;
  List& to = busy ? busy_ : idle_;
  to.splice(to.begin(), from, entry);
  entry->busy = busy;
}

bool ClientLimiter::find(const ClientKey& key, Clock::time_point now, List::iterator* entry) {
  auto found = index_.find(key);
  if (found != index_.end()) {
    *entry = found->second;
    return true;
  }
  expireIdle(now);
  if (index_.size() >= std::max<uint32_t>(limits_.table_size, 1)) {
    if (idle_.empty()) {
      ++untracked_;
      return false;
    }
    index_.erase(idle_.back().key);
    idle_.pop_back();
    ++evictions_;
  }
  idle_.push_front(Entry{key, 0, 0, static_cast<double>(limits_.rate), now, now, false});
  index_.emplace(key, idle_.begin());
  *entry = idle_.begin();
  return true;
}

ConnectionAdmission ClientLimiter::admitConnection(const ClientKey& client, Clock::time_point now) {
  if (limits_.connections == 0 || !client.valid()) return ConnectionAdmission::kUncounted;
  List::iterator entry;
  if (!find(limitKey(client), now, &entry)) return ConnectionAdmission::kUncounted;
  ConnectionAdmission admission;
  if (entry->connections < limits_.connections) {
    ++entry->connections;
    admission = ConnectionAdmission::kAdmitted;
  } else if (entry->over_limit < limits_.connections) {
    ++entry->over_limit;
    admission = ConnectionAdmission::kOverLimit;
  } else {
    return ConnectionAdmission::kClose;
  }
  touch(entry, now);
  return admission;
}

void ClientLimiter::releaseConnection(const ClientKey& client, ConnectionAdmission admission) {
  if (admission != ConnectionAdmission::kAdmitted && admission != ConnectionAdmission::kOverLimit) return;
  auto found = index_.find(limitKey(client));
  if (found == index_.end()) return;  // cannot happen: a busy entry is never forgotten
  Entry& entry = *found->second;
  uint32_t& count = admission == ConnectionAdmission::kAdmitted ? entry.connections : entry.over_limit;
  assert(count > 0 && "a connection released twice");
  if (count > 0) --count;
  touch(found->second, Clock::now());
}

std::optional<uint32_t> ClientLimiter::takeRequest(const ClientKey& client, Clock::time_point now) {
  if (limits_.rate == 0 || !client.valid()) return std::nullopt;
  List::iterator entry;
  if (!find(limitKey(client), now, &entry)) return std::nullopt;
  refill(*entry, now);
  touch(entry, now);
  if (entry->tokens >= 1.0) {
    entry->tokens -= 1.0;
    return std::nullopt;
  }
  double period = std::chrono::duration<double>(limits_.rate_period).count();
  double wait = (1.0 - entry->tokens) * period / limits_.rate;
  // A hair off for the floating-point rounding of an exact number of seconds.
  return static_cast<uint32_t>(std::max(1.0, std::ceil(wait - 1e-6)));
}

}  // namespace stickyproxy
