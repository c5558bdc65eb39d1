// Per-client abuse limits, like HAProxy's stick tables: connections at once and a request rate
// per client address (an IPv6 client per /64), kept in a table with a ceiling.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "proxy/http/admission.h"

struct sockaddr;

namespace stickyproxy {

// An IPv4 or IPv6 address as a table key (IPv4-mapped IPv6 folds to IPv4).
struct ClientKey {
  uint8_t family = 0;  // 4 or 6; 0: not an IP address (a Unix socket peer)
  uint8_t bytes[16] = {};

  static ClientKey fromSockaddr(const struct sockaddr* address);
  // An IP literal ("10.0.0.7", "2001:db8::1"); nullopt for anything else.
  static std::optional<ClientKey> parse(std::string_view text);
  bool valid() const { return family != 0; }
  bool operator==(const ClientKey& other) const;
};

struct ClientKeyHash {
  size_t operator()(const ClientKey& key) const;
};

struct ClientLimits {
  uint32_t connections = 0;  // open connections per client; 0: no limit
  uint32_t rate = 0;         // requests per `rate_period` per client (the burst too); 0: no limit
  std::chrono::milliseconds rate_period{std::chrono::seconds(1)};
  uint32_t table_size = 100000;  // clients remembered at most
};

// Loop thread only. A client's connections keep its entry in the table; a client without one
// is forgotten first when the table is full (the least recently seen), or once its rate bucket
// has refilled. Past the ceiling with every entry holding connections, new clients are served
// unlimited and counted in untracked().
class ClientLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ClientLimiter(ClientLimits limits = {});
  ClientLimiter(const ClientLimiter&) = delete;
  ClientLimiter& operator=(const ClientLimiter&) = delete;

  // Counts apply from now on; clients over a lowered limit keep their open connections. A new
  // rate or period starts every client with a full bucket.
  void setLimits(const ClientLimits& limits);
  const ClientLimits& limits() const { return limits_; }

  // A new connection from `key`: kAdmitted within the limit, kOverLimit for as many again, then
  // kClose. Every kAdmitted or kOverLimit answer must be followed by one
  // releaseConnection(key, answer) when the connection closes.
  ConnectionAdmission admitConnection(const ClientKey& key, Clock::time_point now);
  void releaseConnection(const ClientKey& key, ConnectionAdmission admission);

  // Takes one request from `key`'s bucket. nullopt: go ahead; otherwise the whole seconds until
  // a request would be let through (at least 1), for Retry-After.
  std::optional<uint32_t> takeRequest(const ClientKey& key, Clock::time_point now);

  size_t size() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }
  uint64_t untracked() const { return untracked_; }

 private:
  struct Entry {
    ClientKey key;
    uint32_t connections = 0;  // kAdmitted ones
    uint32_t over_limit = 0;   // kOverLimit ones
    double tokens = 0;
    Clock::time_point refilled;
    Clock::time_point seen;
    bool busy = false;  // in busy_ (connections + over_limit > 0), else in idle_
  };
  using List = std::list<Entry>;

  // The entry of `key`, made (with a full bucket) if need be; false when the table is full of
  // clients holding connections.
  bool find(const ClientKey& key, Clock::time_point now, List::iterator* entry);
  // Moves `entry` to the front of the list it belongs in now (busy_ or idle_).
  void touch(List::iterator entry, Clock::time_point now);
  // Forgets idle clients whose bucket is full again, oldest first.
  void expireIdle(Clock::time_point now);
  void refill(Entry& entry, Clock::time_point now) const;

  ClientLimits limits_;
  // Clients holding connections, and the others (front: most recently seen).
  List busy_;
  List idle_;
  std::unordered_map<ClientKey, List::iterator, ClientKeyHash> index_;
  uint64_t evictions_ = 0;
  uint64_t untracked_ = 0;
};

}  // namespace stickyproxy
