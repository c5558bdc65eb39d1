#include "proxy/core/handover.h"

#include <picojson.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "proxy/core/worker.h"
#include "proxy/net/fd_passing.h"
#include "proxy/net/json_document.h"

namespace stickyproxy {

namespace {

// A handover describes a few sockets and workers; anything bigger is not one.
constexpr size_t kMaxHandoverBytes = 1 << 20;
// Linux's largest pid (PID_MAX_LIMIT), and a bound for counters that a double holds exactly.
constexpr double kMaxPid = 4194304;
constexpr double kMaxCount = 9007199254740992.0;

bool serves(const Address& configured, const Endpoint& handed) {
  Endpoint wanted = endpointFor(configured);
  if (wanted == handed) return true;
  if (configured.kind != Address::Kind::kTcp || configured.port != 0 || handed.kind != Endpoint::Kind::kTcp) {
    return false;
  }
  // Port 0 asked the kernel for a port: the one it gave the predecessor is the one to keep.
  std::string text = handed.toString();
  Address same_port = configured;
  same_port.port = static_cast<uint16_t>(std::stoul(text.substr(text.rfind(':') + 1)));
  return endpointFor(same_port) == handed;
}

}  // namespace

std::optional<HandedSocket> HandoverState::takeSocket(const std::string& role, const Address& configured) {
  for (HandedSocket& socket : sockets) {
    if (socket.role != role || socket.fd < 0 || !serves(configured, socket.endpoint)) continue;
    HandedSocket taken = socket;
    socket.fd = -1;
    return taken;
  }
  return std::nullopt;
}

const HandedWorker* HandoverState::worker(const std::string& name) const {
  for (const HandedWorker& handed : workers) {
    if (handed.name == name) return &handed;
  }
  return nullptr;
}

void HandoverState::closeUntaken() {
  for (HandedSocket& socket : sockets) {
    if (socket.fd >= 0) ::close(socket.fd);
    socket.fd = -1;
  }
}

std::string handoverJson(const HandoverState& state, std::vector<int>* fds) {
  picojson::object root;
  root["pid"] = picojson::value(static_cast<double>(state.pid));
  root["version"] = picojson::value(state.version);
  picojson::array sockets;
  for (const HandedSocket& socket : state.sockets) {
    if (socket.fd < 0) continue;
    picojson::object entry;
    entry["role"] = picojson::value(socket.role);
    entry["endpoint"] = picojson::value(socket.endpoint.toString());
    entry["fd"] = picojson::value(static_cast<double>(fds->size()));
    fds->push_back(socket.fd);
    sockets.emplace_back(std::move(entry));
  }
  root["sockets"] = picojson::value(std::move(sockets));
  picojson::array workers;
  for (const HandedWorker& worker : state.workers) {
    picojson::object entry;
    entry["name"] = picojson::value(worker.name);
    entry["pid"] = picojson::value(static_cast<double>(worker.pid));
    entry["address"] = picojson::value(worker.address);
    picojson::array argv;
    for (const std::string& arg : worker.argv) argv.emplace_back(arg);
    entry["argv"] = picojson::value(std::move(argv));
    entry["restarts"] = picojson::value(static_cast<double>(worker.restarts));
    workers.emplace_back(std::move(entry));
  }
  root["workers"] = picojson::value(std::move(workers));
  return picojson::value(std::move(root)).serialize();
}

bool parseHandover(const std::string& json, const std::vector<int>& fds, HandoverState* state, std::string* error) {
  picojson::value root;
  std::string parse_error = parseJsonDocument(json, &root);
  auto fail = [&](const std::string& why) {
    *error = "bad handover: " + why;
    return false;
  };
  if (!parse_error.empty()) return fail(parse_error);
  if (!root.is<picojson::object>()) return fail("not an object");
  const picojson::object& object = root.get<picojson::object>();
  // Whole numbers in [0, limit]: every cast below is then exact.
  auto number = [](const picojson::object& from, const char* key, double* out, double limit = kMaxPid) {
    auto it = from.find(key);
    if (it == from.end() || !it->second.is<double>()) return false;
    *out = it->second.get<double>();
    return *out >= 0 && *out <= limit && *out == static_cast<double>(static_cast<int64_t>(*out));
  };
  auto text = [](const picojson::object& from, const char* key, std::string* out) {
    auto it = from.find(key);
    if (it == from.end() || !it->second.is<std::string>()) return false;
    *out = it->second.get<std::string>();
    return true;
  };
  auto array = [](const picojson::object& from, const char* key) -> const picojson::array* {
    auto it = from.find(key);
    return it != from.end() && it->second.is<picojson::array>() ? &it->second.get<picojson::array>() : nullptr;
  };
  HandoverState parsed;
  double pid = 0;
  if (!number(object, "pid", &pid) || pid < 1) return fail("no pid");
  parsed.pid = static_cast<pid_t>(pid);
  text(object, "version", &parsed.version);
  const picojson::array* sockets = array(object, "sockets");
  const picojson::array* workers = array(object, "workers");
  if (sockets == nullptr || workers == nullptr) return fail("no sockets or workers");
  std::vector<bool> used(fds.size(), false);
  for (const picojson::value& value : *sockets) {
    if (!value.is<picojson::object>()) return fail("a socket is not an object");
    const picojson::object& entry = value.get<picojson::object>();
    HandedSocket socket;
    std::string endpoint;
    double index = 0;
    if (!text(entry, "role", &socket.role) || !text(entry, "endpoint", &endpoint) || !number(entry, "fd", &index)) {
      return fail("a socket lacks role, endpoint or fd");
    }
    std::optional<Endpoint> parsed_endpoint = Endpoint::parse(endpoint);
    if (!parsed_endpoint) return fail("bad endpoint \"" + endpoint + "\"");
    auto position = static_cast<size_t>(index);
    if (position >= fds.size() || used[position]) return fail("socket " + endpoint + " has no descriptor");
    used[position] = true;
    socket.endpoint = *parsed_endpoint;
    socket.fd = fds[position];
    parsed.sockets.push_back(std::move(socket));
  }
  for (const picojson::value& value : *workers) {
    if (!value.is<picojson::object>()) return fail("a worker is not an object");
    const picojson::object& entry = value.get<picojson::object>();
    HandedWorker worker;
    double worker_pid = 0;
    double restarts = 0;
    if (!text(entry, "name", &worker.name) || !number(entry, "pid", &worker_pid) || worker_pid < 1 ||
        !text(entry, "address", &worker.address)) {
      return fail("a worker lacks name, pid or address");
    }
    number(entry, "restarts", &restarts, kMaxCount);
    worker.pid = static_cast<pid_t>(worker_pid);
    worker.restarts = static_cast<uint64_t>(restarts);
    if (const picojson::array* argv = array(entry, "argv")) {
      for (const picojson::value& arg : *argv) {
        if (!arg.is<std::string>()) return fail("worker " + worker.name + ": argv holds a non-string");
        worker.argv.push_back(arg.get<std::string>());
      }
    }
    parsed.workers.push_back(std::move(worker));
  }
  *state = std::move(parsed);
  return true;
}

HandoverClient::~HandoverClient() {
  state_.closeUntaken();
  if (fd_ >= 0) ::close(fd_);
}

bool HandoverClient::receive(const std::string& admin_socket, std::chrono::milliseconds timeout, std::string* error) {
  sockaddr_un address{};
  if (admin_socket.empty() || admin_socket.size() >= sizeof(address.sun_path)) {
    *error = "no usable proxy.admin_socket to take over from";
    return false;
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, admin_socket.c_str(), admin_socket.size());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    *error = "cannot connect to " + admin_socket + ": " + std::strerror(errno) + " (is a proxy running?)";
    return false;
  }
  if (!writeLine(fd_, "handover\n", timeout, error)) return false;
  std::string payload;
  std::vector<int> fds;
  if (!receiveMessageWithFds(fd_, kMaxHandoverBytes, timeout, &payload, &fds, error)) return false;
  // A refusal comes as an error line instead of a message ("error: ..." is no length).
  if (!parseHandover(payload, fds, &state_, error)) {
    for (int fd : fds) ::close(fd);
    return false;
  }
  // Descriptors sent twice or not named by any socket are not ours to keep.
  for (int fd : fds) {
    bool named = false;
    for (const HandedSocket& socket : state_.sockets) named = named || socket.fd == fd;
    if (!named) ::close(fd);
  }
  return true;
}

bool HandoverClient::confirm(std::chrono::milliseconds timeout, std::string* error) {
  if (fd_ < 0) {
    *error = "no handover in progress";
    return false;
  }
  if (!writeLine(fd_, "taken " + std::to_string(::getpid()) + "\n", timeout, error)) return false;
  std::string line;
  if (!readLine(fd_, 256, timeout, &line, error)) return false;
  if (line != "released") {
    *error = "the running proxy answered \"" + line + "\"";
    return false;
  }
  ::close(fd_);
  fd_ = -1;
  return true;
}

}  // namespace stickyproxy
