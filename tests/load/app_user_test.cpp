// A simulated user against fake apps that fail in known ways: each failure is counted as the
// kind a user would notice, and the user starts the flow over.
#include "load/app_user.h"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>

#include "proxy/http/http_server.h"
#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

using namespace stickyproxy;
using namespace stickyproxy::load;

namespace {

// Answers every request once its body is in, with what `answer` returns for its path.
struct FakeApp {
  using Answer = std::function<void(const ServerExchangePtr&, const std::string& path)>;
  FakeApp(uv_loop_t* loop, Answer answer)
      : answer_(std::move(answer)), server(loop, ServerOptions{}, [this](const ServerExchangePtr& exchange) {
          exchange->setHandler(std::make_shared<Exchange>(this, exchange));
        }) {
    REQUIRE(server.listen(*Endpoint::parse("127.0.0.1:0")) == 0);
  }
  struct Exchange : ExchangeHandler {
    Exchange(FakeApp* owner, ServerExchangePtr exchange) : owner_(owner), exchange_(std::move(exchange)) {}
    void onRequestBody(const Bytes&) override {}
    void onRequestComplete() override {
      ++owner_->requests;
      owner_->answer_(exchange_, std::string(exchange_->request().path()));
      exchange_.reset();
    }
    FakeApp* owner_;
    ServerExchangePtr exchange_;
  };
  Answer answer_;
  HttpServer server;
  int requests = 0;
};

void json(const ServerExchangePtr& exchange, int status, const std::string& body) {
  exchange->respond(status, "application/json", body);
}

// The page and the page's status succeed; `upload` answers the upload.
FakeApp::Answer pageThen(std::function<void(const ServerExchangePtr&)> upload) {
  return [upload](const ServerExchangePtr& exchange, const std::string& path) {
    if (path == "/") {
      exchange->respond(200, "text/html", "<html><body>app</body></html>");
    } else if (path == "/session_status") {
      json(exchange, 200, R"({"status":"success","session_id":null})");
    } else {
      upload(exchange);
    }
  };
}

// The loop, a fake app on it and a user's settings; close() stops the app, then checks that the
// loop holds no handle any more.
struct Rig {
  explicit Rig(FakeApp::Answer answer) : app(std::make_unique<FakeApp>(loop.get(), std::move(answer))) {
    testing::writeFile(dir.file("wards.csv"), "WardName,WardCode\nA,W1\nB,W2\n");
    testing::writeFile(dir.file("wards_shapefile.zip"), "zip");
    std::string error;
    data = AppDataset::load(dir.path(), &error);
    REQUIRE(data);
    settings.agent.target = app->server.boundEndpoint();
    settings.agent.host_header = "test";
    settings.agent.response_timeout = std::chrono::seconds(5);
    settings.think_min = settings.think_max = 0.001;
  }
  void close() {
    app.reset();
    CHECK(loop.close() == 0);
  }

  testing::TestLoop loop;
  testing::TempDir dir{"load-user"};
  std::unique_ptr<FakeApp> app;
  std::optional<AppDataset> data;
  UserSettings settings;
  LoadRecorder recorder{std::chrono::steady_clock::now()};
};

void runUntilFailures(Rig& rig, AppUser& user, uint64_t failures) {
  user.start(std::chrono::milliseconds(0));
  REQUIRE(rig.loop.runUntil([&] { return rig.recorder.errorsTotal() >= failures; }));
  user.abort();
}

}  // namespace

TEST_CASE("an app that lost the session is a session error and a failed upload; the user tries again", "[load]") {
  Rig rig(pageThen([](const ServerExchangePtr& exchange) {
    json(exchange, 400, R"({"status":"error","message":"Please upload both CSV and shapefile data first"})");
  }));
  {
    AppUser user(rig.loop.get(), 0, rig.settings, &*rig.data, false, &rig.recorder);
    runUntilFailures(rig, user, 2);
  }
  CHECK(rig.recorder.errors(FailureKind::kSession) >= 2);
  CHECK(rig.recorder.errors(FailureKind::kHttp) == 0);
  CHECK(rig.recorder.failed_uploads_whole >= 2);
  CHECK(rig.recorder.uploads_whole >= 2);
  CHECK(rig.recorder.sessionTexts().count("Please upload both CSV and shapefile data") == 1);
  CHECK(rig.recorder.samples().front().find("POST /upload_both_files") != std::string::npos);
  rig.close();
}

TEST_CASE("a 500 on the upload is an upload failure, not a session error", "[load]") {
  Rig rig(pageThen([](const ServerExchangePtr& exchange) { json(exchange, 500, R"({"status":"error","message":"boom"})"); }));
  {
    AppUser user(rig.loop.get(), 0, rig.settings, &*rig.data, false, &rig.recorder);
    runUntilFailures(rig, user, 1);
  }
  CHECK(rig.recorder.errors(FailureKind::kUpload) >= 1);
  CHECK(rig.recorder.errors(FailureKind::kSession) == 0);
  CHECK(rig.recorder.failed_uploads_whole >= 1);
  rig.close();
}

TEST_CASE("an upload answer for the wrong ward count fails the upload", "[load]") {
  Rig rig(pageThen([](const ServerExchangePtr& exchange) {
    HeaderList extra;
    extra.add("Set-Cookie", "chatmrpt_session=0123456789abcdef0123456789abcdef; Path=/");
    exchange->respond(200, "application/json",
                      R"({"status":"success","session_id":"0123456789abcdef0123456789abcdef",)"
                      R"("upload_type":"csv_shapefile","message":"Uploaded 3 wards and 3 ward boundaries"})",
                      std::move(extra));
  }));
  {
    AppUser user(rig.loop.get(), 0, rig.settings, &*rig.data, false, &rig.recorder);
    runUntilFailures(rig, user, 1);
  }
  CHECK(rig.recorder.errors(FailureKind::kUpload) >= 1);
  CHECK(rig.recorder.samples().front().find("for 2 wards") != std::string::npos);
  rig.close();
}

TEST_CASE("a proxy that replaces the routing key is a session error", "[load]") {
  int issued = 0;
  Rig rig([&issued](const ServerExchangePtr& exchange, const std::string&) {
    HeaderList extra;
    extra.add("Set-Cookie", "stickyproxy=key" + std::to_string(++issued) + ".w1.1.mac; Path=/");
    exchange->respond(200, "text/html", "<html></html>", std::move(extra));
  });
  {
    AppUser user(rig.loop.get(), 0, rig.settings, &*rig.data, false, &rig.recorder);
    runUntilFailures(rig, user, 1);
  }
  CHECK(rig.recorder.errors(FailureKind::kSession) >= 1);
  CHECK(rig.recorder.samples().front().find("routing key") != std::string::npos);
  rig.close();
}

TEST_CASE("no server is a network failure", "[load]") {
  Endpoint nobody;
  {
    Rig rig([](const ServerExchangePtr& exchange, const std::string&) { exchange->respond(200, "text/plain", "x"); });
    nobody = rig.app->server.boundEndpoint();
    rig.close();
  }
  Rig rig([](const ServerExchangePtr& exchange, const std::string&) { exchange->respond(200, "text/plain", "x"); });
  rig.settings.agent.target = nobody;
  {
    AppUser user(rig.loop.get(), 0, rig.settings, &*rig.data, false, &rig.recorder);
    runUntilFailures(rig, user, 1);
  }
  CHECK(rig.recorder.errors(FailureKind::kNetwork) >= 1);
  rig.close();
}
