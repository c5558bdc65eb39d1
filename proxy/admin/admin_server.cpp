#include "proxy/admin/admin_server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/core/access_log.h"
#include "proxy/net/file_util.h"
#include "proxy/net/loop_context.h"
#include "proxy/net/stream.h"
#include "proxy/net/timer.h"

namespace stickyproxy {

namespace {

// A client cut off with an error line gets this long to read it before the connection closes.
constexpr std::chrono::seconds kFlushLimit{5};

// True when a process accepts connections on the Unix socket `path` (a live proxy owns it).
bool someoneListens(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

}  // namespace

// One client. Owned by the server's map; callbacks hold weak pointers.
class AdminServer::Connection : public Stream::Handler, public std::enable_shared_from_this<Connection> {
 public:
  Connection(AdminServer* server, uint64_t id, StreamPtr stream)
      : server_(server), id_(id), stream_(std::move(stream)), idle_timer_(stream_->loop()) {}

  void start() {
    stream_->setHandler(this);
    // High water 0: onStreamDrained tells when every answer has reached the kernel.
    stream_->setWriteHighWater(0);
    stream_->startReading();
    armIdleTimer();
  }

  // Answers `text` and closes once it is written.
  void refuse(const std::string& text) {
    stream_->setHandler(this);
    stream_->setWriteHighWater(0);
    stream_->write(text + "\n\n");
    closeAfterFlush();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    idle_timer_.stop();
    stream_->setHandler(nullptr);
    stream_->close();
    if (server_ != nullptr) server_->forget(id_);
  }
  // The server is going away: no more calls into it.
  void detachServer() { server_ = nullptr; }
  // No further commands: closes once the command being run is answered and the answer written.
  void retire() {
    retiring_ = true;
    if (!pending_) closeAfterFlush();
  }

  void onStreamRead(const Bytes& data) override {
    input_.append(data.data, data.size);
    processLines();
  }

  void onStreamEnd(int status) override {
    if (status != UV_EOF) {
      close();
      return;
    }
    eof_ = true;
    processLines();
  }

  void onStreamDrained() override {
    if (closing_) close();
  }

 private:
  void armIdleTimer() {
    if (server_ == nullptr) return;
    std::weak_ptr<Connection> weak = weak_from_this();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(server_->options_.idle_timeout).count();
    idle_timer_.start(server_->options_.idle_timeout, [weak, seconds] {
      if (auto self = weak.lock()) {
        logInfo("admin: a client sent no command for " + std::to_string(seconds) + "s; closing it");
        self->stream_->write("error: no command for " + std::to_string(seconds) + "s; closing\n\n");
        self->closeAfterFlush();
      }
    });
  }

  // Closes once everything queued reached the kernel, or after kFlushLimit for a client that
  // does not read.
  void closeAfterFlush() {
    closing_ = true;
    if (stream_->queuedBytes() == 0) {
      close();
      return;
    }
    std::weak_ptr<Connection> weak = weak_from_this();
    idle_timer_.start(kFlushLimit, [weak] {
      if (auto self = weak.lock()) self->close();
    });
  }

  void fail(const std::string& message) {
    logError("admin: " + message + "; closing the client");
    stream_->write("error: " + message + "\n\n");
    closeAfterFlush();
  }

  // Hands complete lines to the handler, one at a time.
  void processLines() {
    if (processing_) return;  // a synchronous answer from inside the loop below
    processing_ = true;
    while (!closed_ && !closing_ && !pending_ && server_ != nullptr) {
      size_t end = input_.find('\n');
      if (end == std::string::npos) {
        if (input_.size() > server_->options_.max_line) {
          fail("line longer than " + std::to_string(server_->options_.max_line) + " bytes");
        } else if (eof_) {
          closeAfterFlush();
        }
        break;
      }
      if (end > server_->options_.max_line) {
        fail("line longer than " + std::to_string(server_->options_.max_line) + " bytes");
        break;
      }
      std::string line = input_.substr(0, end);
      input_.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      if (server_->options_.take_connection) {
        int fd = ::fcntl(stream_->fd(), F_DUPFD_CLOEXEC, 0);
        if (fd >= 0 && server_->options_.take_connection(line, fd)) {
          close();
          break;
        }
        if (fd >= 0) ::close(fd);
      }
      pending_ = true;
      idle_timer_.stop();
      std::weak_ptr<Connection> weak = weak_from_this();
      server_->handler_(line, [weak](const std::string& answer) {
        if (auto self = weak.lock()) self->answer(answer);
      });
    }
    processing_ = false;
    // Lines waiting behind a slow command: stop reading beyond one line's worth.
    if (!closed_ && server_ != nullptr) {
      bool over = pending_ && input_.size() > server_->options_.max_line;
      if (over && stream_->reading()) stream_->stopReading();
      if (!over && !eof_ && !stream_->reading()) stream_->startReading();
    }
  }

  void answer(const std::string& text) {
    if (closed_ || !pending_) return;
    pending_ = false;
    std::string out = text;
    if (out.empty() || out.back() != '\n') out += '\n';
    stream_->write(out + "\n");
    if (server_ != nullptr && stream_->queuedBytes() > server_->options_.max_output) {
      logError("admin: a client does not read its answers; closing it");
      close();
      return;
    }
    if (retiring_) {
      closeAfterFlush();
      return;
    }
    if (!closing_) armIdleTimer();
    processLines();
  }

  AdminServer* server_;
  uint64_t id_;
  StreamPtr stream_;
  Timer idle_timer_;
  std::string input_;
  bool pending_ = false;     // a line is with the handler
  bool processing_ = false;  // inside processLines()
  bool eof_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool retiring_ = false;
};

AdminServer::AdminServer(uv_loop_t* loop, AdminServerOptions options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

AdminServer::~AdminServer() {
  close();
  *alive_ = false;
}

bool AdminServer::listen(const std::string& path, std::string* error) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0) {
    if (!S_ISSOCK(info.st_mode)) {
      *error = path + " exists and is not a socket; remove it or choose another proxy.admin_socket";
      return false;
    }
    if (someoneListens(path)) {
      *error = path + " is in use by another process (another stickyproxy?)";
      return false;
    }
    // A socket nobody accepts on: left by a proxy that died. The Listener replaces it.
  }
  gid_t group_id = 0;
  unsigned mode = options_.mode;
  if (!options_.group.empty()) {
    struct group* entry = ::getgrnam(options_.group.c_str());
    if (entry == nullptr) {
      *error = "unknown group \"" + options_.group + "\" for the admin socket";
      return false;
    }
    group_id = entry->gr_gid;
    mode |= 0060;
  }
  listener_ = std::make_unique<Listener>(loop_);
  int status = listener_->listen(Endpoint::unixPath(path), [this](StreamPtr stream) { onAccept(std::move(stream)); },
                                 static_cast<int>(mode), 64);
  if (status != 0) {
    listener_.reset();
    *error = "cannot listen on " + path + ": " + uvErrorText(status);
    return false;
  }
  if (!options_.group.empty() && ::chown(path.c_str(), static_cast<uid_t>(-1), group_id) != 0) {
    *error = "cannot give " + path + " to group " + options_.group + ": " + errnoText(errno);
    listener_.reset();
    return false;
  }
  return true;
}

bool AdminServer::adopt(int fd, const std::string& path, std::string* error) {
  listener_ = std::make_unique<Listener>(loop_);
  int status = listener_->adopt(fd, Endpoint::unixPath(path), [this](StreamPtr stream) { onAccept(std::move(stream)); });
  if (status == 0) status = listener_->startAccepting(64);
  if (status != 0) {
    listener_->release();
    listener_.reset();
    *error = "cannot serve the admin socket handed over for " + path + ": " + uvErrorText(status);
    return false;
  }
  return true;
}

void AdminServer::release() {
  if (listener_) listener_->release();
  listener_.reset();
  auto connections = connections_;
  for (auto& [id, connection] : connections) connection->retire();
}

void AdminServer::close() {
  listener_.reset();
  auto connections = std::move(connections_);
  connections_.clear();
  connections.merge(refused_);
  refused_.clear();
  for (auto& [id, connection] : connections) {
    connection->detachServer();
    connection->close();
  }
}

void AdminServer::onAccept(StreamPtr stream) {
  uint64_t id = ++next_id_;
  auto connection = std::make_shared<Connection>(this, id, std::move(stream));
  if (connections_.size() >= options_.max_connections) {
    logError("admin: more than " + std::to_string(options_.max_connections) + " clients; refusing one");
    // Kept (not counted) until its error line is written.
    refused_[id] = connection;
    connection->refuse("error: too many admin connections (at most " + std::to_string(options_.max_connections) +
                       ")");
    return;
  }
  connections_[id] = connection;
  connection->start();
}

void AdminServer::forget(uint64_t id) {
  std::weak_ptr<bool> alive = alive_;
  LoopContext::of(loop_).defer([this, alive, id] {
    if (alive.expired()) return;  // the server is gone
    connections_.erase(id);
    refused_.erase(id);
  });
}

}  // namespace stickyproxy
