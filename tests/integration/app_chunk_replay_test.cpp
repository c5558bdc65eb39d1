// A chunked upload whose worker dies while it commits the finalize: the proxy replays the same
// finalize on the worker that adopts the session, and that worker must find every chunk in the
// session's directory (commit bf23dc1: the chunks stay until the upload is committed).
//
// The death is placed exactly, without timing: w1 runs with a libuv pool of one thread, and the
// test holds that thread with "blocker" uploads whose chunk is a FIFO the test feeds. The queue
// is made to read [blocker 0 (running), the user's assembly, blocker 1]; releasing blocker 0 lets
// the user's assembly run, after which blocker 1 takes the thread for good, so w1's commit of the
// user's upload waits behind it until w1 is killed. Real stickyproxy-backend processes sharing one
// state directory, driven directly; X-Sticky-Previous-Worker is sent by hand as the proxy would.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/app_client.h"
#include "tests/integration/harness.h"
#include "tests/integration/ward_dataset.h"

using namespace stickyproxy::integration;
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunkBytes = 4096;
// A CSV the blockers assemble; their commits never run.
constexpr std::string_view kBlockerCsv = "WardName,x\nA,1\n";

// A stickyproxy-backend worker like WorkerUnderTest's, with a libuv thread pool of one thread.
class OneThreadWorker {
 public:
  OneThreadWorker(const TempDir& dir, const std::string& name)
      : port_(freePort()),
        process_({binaryPath("stickyproxy-backend"), "--name", name, "--listen",
                  "127.0.0.1:" + std::to_string(port_), "--state-dir", dir.file("state")},
                 dir.file(name + ".log"), {"UV_THREADPOOL_SIZE=1"}) {
    bool ready = waitUntil([this] { return answersPing(); }, 10s);
    if (!ready) throw HarnessError("worker " + name + " did not become ready; log:\n" + fileTail(process_.logPath()));
  }
  uint16_t port() const { return port_; }
  ChildProcess& process() { return process_; }
  // GET /ping on a fresh connection. Its answer also proves that the loop finished every
  // callback it was running when the request was sent.
  bool answersPing() {
    try {
      HttpClient probe(port_, 5s);
      return probe.get("/ping").status == 200;
    } catch (const HarnessError&) {
      return false;
    }
  }

 private:
  uint16_t port_;
  ChildProcess process_;
};

// A chunk file replaced by a FIFO that the test holds open for writing: the worker's read of it
// blocks until release() (or the end of the test) closes the test's end.
class FifoChunk {
 public:
  explicit FifoChunk(const std::string& path) {
    fs::remove(path);
    if (::mkfifo(path.c_str(), 0600) != 0) throw HarnessError("mkfifo " + path);
    // O_RDWR never blocks on a FIFO (Linux), and keeps a writer so the worker reads no EOF.
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) throw HarnessError("open " + path);
  }
  ~FifoChunk() { release(); }
  FifoChunk(const FifoChunk&) = delete;
  FifoChunk& operator=(const FifoChunk&) = delete;

  // Writes `bytes` (smaller than a pipe buffer) and closes the test's end: the reader gets them, then EOF.
  void release(std::string_view bytes = {}) {
    if (fd_ < 0) return;
    if (!bytes.empty() && ::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      throw HarnessError("write to a FIFO chunk");
    }
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string finalizeBody(const std::string& upload_id, size_t csv_chunks, size_t shp_chunks) {
  picojson::object body;
  body["upload_id"] = picojson::value(upload_id);
  body["csv_filename"] = picojson::value("wards.csv");
  body["shapefile_filename"] = picojson::value(shp_chunks > 0 ? "wards_shapefile.zip" : "");
  body["csv_total_chunks"] = picojson::value(static_cast<double>(csv_chunks));
  body["shp_total_chunks"] = picojson::value(static_cast<double>(shp_chunks));
  return picojson::value(body).serialize();
}

// Sends POST /upload/finalize for session `session` on a connection of its own and returns that
// connection without waiting for the answer.
HttpClient startFinalize(uint16_t port, const std::string& session, const std::string& upload_id, size_t csv_chunks,
                         size_t shp_chunks) {
  const std::string body = finalizeBody(upload_id, csv_chunks, shp_chunks);
  HttpClient connection(port, 30s);
  connection.sendRaw("POST /upload/finalize HTTP/1.1\r\nHost: w1\r\nCookie: " + kAppCookieName + "=" + session +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body);
  return connection;
}

// How many uploads being assembled in <state>/<worker>/staging/ hold `file` (discarded trees
// aside): upload.json is written just before the assembly is queued, raw_data.csv when it starts.
size_t stagedWith(const TempDir& dir, const std::string& worker, const std::string& file) {
  size_t count = 0;
  std::error_code failure;
  fs::directory_iterator it(dir.file("state") + "/" + worker + "/staging", failure);
  for (; !failure && it != fs::directory_iterator(); it.increment(failure)) {
    if (it->path().filename().string().starts_with("discarded-")) continue;
    std::error_code missing;
    if (fs::exists(it->path() / file, missing)) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("a finalize replayed after its worker died mid-commit finds every chunk on the adopting worker",
          "[integration][app][adoption]") {
  TempDir dir("stickyproxy-chunk-replay");
  const WardDataset data = generateWardDataset(dir.path(), 47, 60);
  OneThreadWorker w1(dir, "w1");
  WorkerUnderTest w2(dir, "stickyproxy-backend", "w2");

  std::vector<HttpClient> connections;
  connections.push_back(HttpClient(w1.port()));
  connections.push_back(w2.client());
  AppClient user(std::move(connections));
  const std::string upload_id = "replayed-upload";
  const std::vector<AppReply> csv = user.uploadChunks(upload_id, "csv", data.csv, kChunkBytes);
  const std::vector<AppReply> zip = user.uploadChunks(upload_id, "shapefile", data.zip, kChunkBytes);
  REQUIRE(csv.size() >= 2);
  for (const std::vector<AppReply>* replies : {&csv, &zip}) {
    for (const AppReply& reply : *replies) {
      INFO(reply.describe());
      REQUIRE(reply.status() == 200);
    }
  }
  const std::string session = user.appSession();
  REQUIRE_FALSE(session.empty());
  const std::string chunk_dir = dir.file("state") + "/w1/uploads/" + session + "/chunks/" + upload_id;
  REQUIRE(fs::exists(chunk_dir + "/csv.0"));

  // Another user's two uploads of one chunk each, whose chunk becomes a FIFO.
  AppClient other(HttpClient(w1.port()));
  for (const char* id : {"blocker-0", "blocker-1"}) {
    AppReply chunk = other.uploadChunk(id, "csv", 0, 1, kBlockerCsv);
    INFO(chunk.describe());
    REQUIRE(chunk.status() == 200);
  }
  const std::string other_chunks = dir.file("state") + "/w1/uploads/" + other.appSession() + "/chunks/";
  FifoChunk blocker0(other_chunks + "blocker-0/csv.0");
  FifoChunk blocker1(other_chunks + "blocker-1/csv.0");

  // Blocker 0 takes w1's one pool thread...
  HttpClient finalize0 = startFinalize(w1.port(), other.appSession(), "blocker-0", 1, 0);
  REQUIRE(waitUntil([&] { return stagedWith(dir, "w1", "raw_data.csv") == 1; }, 10s));
  // ...the user's assembly is queued behind it, then blocker 1 behind that.
  HttpClient finalize_user = startFinalize(w1.port(), session, upload_id, csv.size(), zip.size());
  REQUIRE(waitUntil([&] { return stagedWith(dir, "w1", "upload.json") == 2; }, 10s));
  REQUIRE(w1.answersPing());
  HttpClient finalize1 = startFinalize(w1.port(), other.appSession(), "blocker-1", 1, 0);
  REQUIRE(waitUntil([&] { return stagedWith(dir, "w1", "upload.json") == 3; }, 10s));
  REQUIRE(w1.answersPing());

  // Blocker 0 ends; the user's chunks are assembled; blocker 1 starts (its raw_data.csv appears)
  // and holds the thread, so the commit w1 then queues for the user's upload never runs.
  blocker0.release(kBlockerCsv);
  REQUIRE(waitUntil([&] { return stagedWith(dir, "w1", "raw_data.csv") == 3; }, 10s));
  REQUIRE(w1.answersPing());  // the assembly's completion ran on w1's loop before this answer
  CHECK(fs::exists(chunk_dir + "/csv.0"));  // kept until the commit

  // w1 dies mid-commit; the proxy re-pins the user to w2 and replays the finalize there.
  w1.process().kill(SIGKILL);
  REQUIRE(w1.process().waitExit(10s).has_value());
  user.use(1);
  AppReply replay = user.send("POST", "/upload/finalize",
                              {{"Content-Type", "application/json"}, {"X-Sticky-Previous-Worker", "w1"}},
                              finalizeBody(upload_id, csv.size(), zip.size()));
  INFO(replay.describe() << "\nw2 log:\n" << fileTail(dir.file("w2.log"), 2000));
  REQUIRE(replay.status() == 200);
  CHECK(replay.worker() == "w2");
  CHECK(replay.text("upload_type") == "csv_shapefile");
  CHECK(replay.number("data_summary.total_rows") == static_cast<double>(data.wards));
  const std::string committed = replay.text("session_id");
  CHECK(committed != session);
  CHECK(user.appSession() == committed);
  // The committed upload's chunks are gone, under the session's new name too.
  CHECK_FALSE(fs::exists(dir.file("state") + "/w2/uploads/" + committed + "/chunks/" + upload_id));
  AppReply analysis = user.postJson("/run_analysis", "{}");
  INFO(analysis.describe());
  CHECK(analysis.status() == 200);
}
