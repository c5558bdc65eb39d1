// The bundled analysis app (stickyproxy-backend) end to end behind stickyproxy: many users
// through the whole flow at once, the same flow failing when requests hop between workers, a
// worker killed in the middle of a session, and bad input that must leave the session usable.

#include <catch2/catch.hpp>
#include <filesystem>
#include <picojson.h>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/app_client.h"
#include "tests/integration/csv_text.h"
#include "tests/integration/harness.h"
#include "tests/integration/routing_cookies.h"
#include "tests/integration/proxy_scenarios.h"
#include "tests/integration/stored_zip.h"
#include "tests/integration/ward_dataset.h"

using namespace stickyproxy::integration;

namespace {

// Small enough that every generated file makes several chunks.
constexpr size_t kChunkBytes = 16 * 1024;
// The default analysis combines its 5 variables in every way of 2 to 5: 10 + 10 + 5 + 1 models.
constexpr double kDefaultModelCount = 26;
constexpr size_t kDefaultVariableCount = 5;
constexpr std::string_view kUploadBothFirst = "Please upload both CSV and shapefile data before running analysis";
constexpr std::string_view kVizNotFound = "Visualization file not found";

const std::vector<std::string> kResultCsvs = {"analysis_vulnerability_rankings.csv", "composite_scores.csv",
                                              "model_formulas.csv", "analysis_pca_results.csv",
                                              "unified_dataset.csv"};

// Two datasets of different sizes, generated once per run of the test binary and shared
// read-only by the tests (and their threads).
const WardDataset& dataset(size_t which) {
  static TempDir dir("stickyproxy-wards");
  static const std::vector<WardDataset> datasets{generateWardDataset(dir.path(), 11, 300),
                                                 generateWardDataset(dir.path(), 12, 240)};
  return datasets.at(which);
}

// The bundled app behind the proxy, as in production: four workers w1..w4. Every step of these
// tests takes a second or two at most, so a request that waits 20 s for its worker has failed.
std::string appConfig() {
  return ProxyUnderTest::standardConfig(4, "stickyproxy-backend", {{"timeouts.upstream_response", "20s"}});
}

// A user whose routing cookie is fixed by the test, so which worker it lands on is the same on
// every run.
AppClient userWithKey(const ProxyUnderTest& proxy, const std::string& routing_key) {
  AppClient user(proxy.client(30s));
  user.setCookie(kCookieName, routing_key);
  return user;
}

bool isSessionId(const std::string& text) { return std::regex_match(text, std::regex("[0-9a-f]{32}")); }

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// Failed expectations, collected where Catch2 may not be used (its assertions are not
// thread-safe) and reported by the test's thread afterwards.
class Expectations {
 public:
  explicit Expectations(std::string who) : who_(std::move(who)) {}

  // Records `what` when `ok` is false; returns `ok`.
  bool expect(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(who_ + ": " + what);
    return ok;
  }
  // A reply with HTTP `status` and, for JSON answers, "status": "success".
  bool expectSuccess(const AppReply& reply, int status = 200) {
    const bool json_ok = !reply.json || reply.text("status") == "success";
    return expect(reply.status() == status && json_ok, "expected " + std::to_string(status) + " success: " +
                                                           reply.describe());
  }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::string who_;
  std::vector<std::string> failures_;
};

// Fails the calling test with every failure listed.
void requireNone(const Expectations& expectations) {
  for (const std::string& failure : expectations.failures()) UNSCOPED_INFO(failure);
  REQUIRE(expectations.failures().empty());
}

// The upload answer for `data`: a new session id, the cookie set to it, and a summary that
// counts every ward and matches every boundary.
bool checkUploadAnswer(Expectations& check, const AppReply& upload, const WardDataset& data) {
  if (!check.expectSuccess(upload)) return false;
  const std::string id = upload.text("session_id");
  check.expect(isSessionId(id), "session_id is 32 hex digits: " + upload.describe());
  check.expect(upload.http.setCookieValue(kAppCookieName) == id,
               "the upload sets chatmrpt_session to the new session id: " + upload.describe());
  check.expect(upload.text("upload_type") == "csv_shapefile", "upload_type csv_shapefile: " + upload.describe());
  const auto wards = static_cast<double>(data.wards);
  check.expect(upload.number("data_summary.total_rows") == wards, "total_rows: " + upload.describe());
  check.expect(upload.number("data_summary.shapefile_info.feature_count") == wards,
               "shapefile_info.feature_count: " + upload.describe());
  check.expect(upload.number("data_summary.join.matched_wards") == wards, "join.matched_wards: " + upload.describe());
  const std::vector<std::string> columns = upload.texts("data_summary.column_names");
  check.expect(contains(columns, "WardName") && contains(columns, "WardCode"),
               "column_names has WardName and WardCode: " + upload.describe());
  check.expect(upload.number("data_summary.total_columns") == static_cast<double>(columns.size()),
               "total_columns counts column_names: " + upload.describe());
  for (const char* field :
       {"data_summary.preview_rows", "data_summary.column_types", "data_summary.data_completeness"}) {
    check.expect(upload.at(field) != nullptr, std::string(field) + ": " + upload.describe());
  }
  check.expect(!upload.text("message").empty(), "a message: " + upload.describe());
  return check.failures().empty();
}

// Uploads `data` whole or in chunks; returns the upload answer (checked).
AppReply uploadDataset(AppClient& user, Expectations& check, const WardDataset& data, bool chunked,
                       const std::string& upload_id) {
  if (!chunked) {
    AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards_shapefile.zip", data.zip);
    checkUploadAnswer(check, upload, data);
    return upload;
  }
  size_t counts[2] = {0, 0};
  const std::pair<std::string, const std::string*> files[2] = {{"csv", &data.csv}, {"shapefile", &data.zip}};
  for (size_t file = 0; file < 2; ++file) {
    const auto& [file_type, bytes] = files[file];
    std::vector<AppReply> replies = user.uploadChunks(upload_id, file_type, *bytes, kChunkBytes);
    counts[file] = replies.size();
    check.expect(replies.size() >= 2,
                 file_type + " makes several chunks (" + std::to_string(bytes->size()) + " bytes)");
    for (size_t index = 0; index < replies.size(); ++index) {
      const AppReply& reply = replies[index];
      if (!check.expectSuccess(reply)) continue;
      check.expect(reply.text("upload_id") == upload_id && reply.text("file_type") == file_type &&
                       reply.number("chunk_index") == static_cast<double>(index) &&
                       reply.number("received_chunks") == static_cast<double>(index + 1),
                   "chunk " + std::to_string(index) + " acknowledged: " + reply.describe());
    }
  }
  AppReply upload = user.finalizeUpload(upload_id, "wards.csv", "wards_shapefile.zip", counts[0], counts[1]);
  checkUploadAnswer(check, upload, data);
  return upload;
}

// The analysis answer for `wards` wards with the default variables.
void checkAnalysisAnswer(Expectations& check, const AppReply& analysis, size_t wards) {
  if (!check.expectSuccess(analysis)) return;
  check.expect(analysis.number("ward_count") == static_cast<double>(wards), "ward_count: " + analysis.describe());
  check.expect(analysis.number("model_count") == kDefaultModelCount, "model_count: " + analysis.describe());
  check.expect(analysis.texts("variables_used").size() == kDefaultVariableCount,
               "5 variables used: " + analysis.describe());
  for (const char* list : {"high_risk_wards", "medium_risk_wards", "low_risk_wards"}) {
    const size_t size = analysis.texts(list).size();
    check.expect(size >= 1 && size <= 10, std::string(list) + " has 1 to 10 wards: " + analysis.describe());
  }
}

// GET of a map's web_path: an HTML page with an SVG drawing, from the user's worker.
void checkMapPage(AppClient& user, Expectations& check, const std::string& web_path) {
  AppReply page = user.get(web_path);
  check.expect(page.status() == 200 && page.http.headerOr("Content-Type").rfind("text/html", 0) == 0 &&
                   page.http.body.find("<svg") != std::string::npos,
               "an HTML page with an <svg>: " + page.describe());
}

// A get_visualization or navigate_composite_map answer: a web_path into this session's files.
bool checkMapAnswer(Expectations& check, const AppReply& reply, const std::string& session_id) {
  if (!check.expectSuccess(reply)) return false;
  const std::string web_path = reply.text("web_path");
  return check.expect(web_path.rfind("/serve_viz_file/" + session_id + "/", 0) == 0 && web_path.ends_with(".html") &&
                          !reply.text("title").empty(),
                      "web_path /serve_viz_file/<sid>/<file>.html and a title: " + reply.describe());
}

// Every map type, composite pages forward and back, each page fetched.
void showEveryMap(AppClient& user, Expectations& check, const std::string& session_id,
                  const std::string& variable) {
  for (const char* type : {"vulnerability_map", "box_plot", "pca_map"}) {
    AppReply map = user.postJson("/get_visualization", jsonBody({{"type", type}}));
    if (checkMapAnswer(check, map, session_id)) checkMapPage(user, check, map.text("web_path"));
  }
  AppReply variable_map =
      user.postJson("/get_visualization", jsonBody({{"type", "variable_map"}, {"variable", variable}}));
  if (checkMapAnswer(check, variable_map, session_id)) checkMapPage(user, check, variable_map.text("web_path"));

  AppReply composite = user.postJson("/get_visualization", jsonBody({{"type", "composite_map"}}));
  if (!checkMapAnswer(check, composite, session_id)) return;
  checkMapPage(user, check, composite.text("web_path"));
  const std::optional<double> pages = composite.number("total_pages");
  if (!check.expect(composite.number("current_page") == 1.0 && pages && *pages >= 2,
                    "composite maps start on page 1 of several: " + composite.describe())) {
    return;
  }
  AppReply next = user.postJson("/navigate_composite_map", R"({"direction":"next","current_page":1})");
  if (checkMapAnswer(check, next, session_id)) {
    check.expect(next.number("current_page") == 2.0 && next.number("total_pages") == pages &&
                     next.text("web_path") != composite.text("web_path"),
                 "next goes to page 2: " + next.describe());
    checkMapPage(user, check, next.text("web_path"));
  }
  AppReply previous = user.postJson("/navigate_composite_map", R"({"direction":"prev","current_page":2})");
  if (checkMapAnswer(check, previous, session_id)) {
    check.expect(previous.number("current_page") == 1.0 && previous.text("web_path") == composite.text("web_path"),
                 "prev goes back to page 1: " + previous.describe());
    checkMapPage(user, check, previous.text("web_path"));
  }
  // Without current_page the session's own page counts.
  AppReply onwards = user.postJson("/navigate_composite_map", R"({"direction":"next"})");
  if (checkMapAnswer(check, onwards, session_id)) {
    check.expect(onwards.number("current_page") == 2.0,
                 "next from the session's page 1 is page 2: " + onwards.describe());
  }
}

// A streamed chat answer: an event stream of several events, each {"content", "done": false},
// the last {"content": "", "done": true}.
bool checkChatStream(Expectations& check, const ChatStreamReply& chat) {
  const std::string what = chat.request + " -> " + std::to_string(chat.head.status) + " (" +
                           chat.head.headerOr("X-Worker") + "), " + std::to_string(chat.events.size()) +
                           " events: " + chat.text();
  if (!check.expect(chat.head.status == 200 &&
                        chat.head.headerOr("Content-Type").rfind("text/event-stream", 0) == 0,
                    "an event stream: " + what)) {
    return false;
  }
  check.expect(chat.malformed.empty(), "every event is JSON: " + what);
  check.expect(chat.events.size() >= 3, "several events: " + what);
  for (size_t i = 0; i + 1 < chat.events.size(); ++i) {
    const picojson::object& event = chat.events[i];
    auto done = event.find("done");
    check.expect(done != event.end() && done->second.is<bool>() && !done->second.get<bool>() &&
                     event.count("content") == 1,
                 "event " + std::to_string(i) + " is content with done:false: " + what);
  }
  return check.expect(chat.endedDone() && chat.lastText("content").empty(), "the last event is done:true: " + what);
}

// The downloadable files /export/list names.
std::vector<std::string> listedFiles(Expectations& check, const AppReply& list, const std::string& session_id) {
  std::vector<std::string> names;
  if (!check.expectSuccess(list)) return names;
  check.expect(list.flag("success") && list.text("session_id") == session_id,
               "success and the session: " + list.describe());
  const picojson::value* files = list.at("files");
  if (!check.expect(files != nullptr && files->is<picojson::array>(), "a files array: " + list.describe())) {
    return names;
  }
  for (const picojson::value& file : files->get<picojson::array>()) {
    if (!file.is<picojson::object>()) continue;
    picojson::object entry = file.get<picojson::object>();
    const std::string filename = entry["filename"].is<std::string>() ? entry["filename"].get<std::string>() : "";
    names.push_back(filename);
    check.expect(entry["url"].is<std::string>() &&
                     entry["url"].get<std::string>() == "/export/download/" + session_id + "/" + filename &&
                     entry["name"].is<std::string>() && entry["type"].is<std::string>() &&
                     entry["description"].is<std::string>() && entry["category"].is<std::string>(),
                 "file entry " + file.serialize() + " has name, type, description, category and its url");
  }
  check.expect(list.number("count") == static_cast<double>(names.size()), "count: " + list.describe());
  return names;
}

// unified_dataset.csv: one row per uploaded ward, every WardCode of the upload.
void checkUnifiedDataset(Expectations& check, const AppReply& download, const WardDataset& data) {
  if (!check.expect(download.status() == 200 && download.http.headerOr("Content-Type").rfind("text/csv", 0) == 0,
                    "a CSV: " + download.describe())) {
    return;
  }
  std::optional<std::vector<CsvRow>> rows = parseCsv(download.http.body);
  std::optional<std::vector<std::string>> codes = rows ? csvColumn(*rows, "WardCode") : std::nullopt;
  if (!check.expect(codes.has_value(), "unified_dataset.csv has a WardCode column: " + download.describe())) return;
  check.expect(codes->size() == data.wards,
               "one row per ward: " + std::to_string(codes->size()) + " rows for " + std::to_string(data.wards));
  const std::set<std::string> got(codes->begin(), codes->end());
  const std::set<std::string> uploaded(data.ward_codes.begin(), data.ward_codes.end());
  check.expect(got == uploaded, "the WardCodes of the upload, no more, no fewer (" + std::to_string(got.size()) +
                                    " distinct, " + std::to_string(uploaded.size()) + " uploaded)");
}

// generate_report in `format`, then the download it names.
AppReply generateAndFetchReport(AppClient& user, Expectations& check, const std::string& format) {
  AppReply report = user.postJson("/generate_report", jsonBody({{"format", format}}));
  const std::string url = report.text("download_url");
  if (!check.expectSuccess(report) ||
      !check.expect(url.rfind("/download_report/", 0) == 0, "a /download_report/ url: " + report.describe())) {
    return report;
  }
  AppReply download = user.get(url);
  check.expect(download.status() == 200, "the report downloads: " + download.describe());
  return download;
}

// A results archive: a zip holding the summary, the result CSVs and the main map.
void checkResultsZip(Expectations& check, const AppReply& download) {
  const std::string& bytes = download.http.body;
  if (!check.expect(bytes.rfind("PK", 0) == 0, "a zip (starts with PK): " + download.describe())) return;
  std::optional<std::vector<std::string>> names = zipEntryNames(bytes);
  if (!check.expect(names.has_value(), "a readable central directory: " + download.describe())) return;
  std::string listing;
  for (const std::string& name : *names) listing += name + " ";
  for (const std::string& expected : {std::string("summary.txt"), std::string("vulnerability_map.html")}) {
    check.expect(contains(*names, expected), "the zip holds " + expected + ": " + listing);
  }
  for (const std::string& csv : kResultCsvs) {
    check.expect(contains(*names, csv), "the zip holds " + csv + ": " + listing);
  }
}

// The whole flow of one user, start to finish, through the proxy.
void wholeFlow(AppClient& user, Expectations& check, const WardDataset& data, bool chunked,
               const std::string& upload_id) {
  AppReply before = user.get("/session_status");
  check.expect(before.status() == 200 && before.isNull("session_id") && !before.flag("csv_loaded"),
               "a new user has no session: " + before.describe());

  AppReply upload = uploadDataset(user, check, data, chunked, upload_id);
  if (!check.failures().empty()) return;
  const std::string id = upload.text("session_id");
  check.expect(user.appSession() == id, "the jar holds the new session id");

  AppReply status = user.get("/session_status");
  check.expect(status.status() == 200 && status.text("session_id") == id && status.flag("csv_loaded") &&
                   status.flag("shapefile_loaded") && !status.flag("analysis_complete"),
               "session_status after the upload: " + status.describe());

  AppReply analysis = user.postJson("/run_analysis", "{}");
  checkAnalysisAnswer(check, analysis, data.wards);
  if (!check.failures().empty()) return;
  const std::vector<std::string> variables = analysis.texts("variables_used");
  const std::vector<std::string> high_risk = analysis.texts("high_risk_wards");
  status = user.get("/session_status");
  check.expect(status.flag("analysis_complete") && status.texts("variables_used") == variables,
               "session_status after the analysis: " + status.describe());

  showEveryMap(user, check, id, variables.front());

  ChatStreamReply highest = user.chat("which wards are highest risk");
  if (checkChatStream(check, highest)) {
    check.expect(highest.text().find(high_risk.front()) != std::string::npos,
                 "the chat names the highest-risk ward " + high_risk.front() + ": " + highest.text());
  }
  ChatStreamReply map = user.chat("show the vulnerability map");
  if (checkChatStream(check, map)) {
    const std::string web_path = map.lastText("web_path");
    check.expect(web_path == "/serve_viz_file/" + id + "/vulnerability_map.html",
                 "the chat gives the vulnerability map's web_path: " + web_path);
    if (!web_path.empty()) checkMapPage(user, check, web_path);
  }
  AppReply said = user.postJson("/send_message", jsonBody({{"message", "which wards are highest risk"}}));
  check.expect(said.status() == 200 && said.text("response").find(high_risk.front()) != std::string::npos,
               "send_message names the highest-risk ward: " + said.describe());

  AppReply list = user.get("/export/list/" + id);
  const std::vector<std::string> files = listedFiles(check, list, id);
  for (const std::string& csv : kResultCsvs) {
    check.expect(contains(files, csv), "export list has " + csv + ": " + list.describe());
  }
  check.expect(contains(files, "vulnerability_map.html"), "export list has the map made: " + list.describe());
  checkUnifiedDataset(check, user.get("/export/download/" + id + "/unified_dataset.csv"), data);

  AppReply html = generateAndFetchReport(user, check, "html");
  check.expect(html.http.headerOr("Content-Type").rfind("text/html", 0) == 0 &&
                   html.http.body.find(high_risk.front()) != std::string::npos,
               "the HTML report names the highest-risk ward: " + html.describe());
  checkResultsZip(check, generateAndFetchReport(user, check, "export"));
  AppReply with_reports = user.get("/export/list/" + id);
  const std::vector<std::string> listed = listedFiles(check, with_reports, id);
  for (const std::string& made : {std::string("analysis_report.html"), std::string("chatmrpt_results.zip"),
                                  std::string("box_plot.html"), std::string("pca_map.html")}) {
    check.expect(contains(listed, made), "export list has " + made + " once made: " + with_reports.describe());
  }

  ChatStreamReply download = user.chat("download the results");
  if (checkChatStream(check, download)) {
    const std::string url = download.lastText("download_url");
    if (check.expect(url.rfind("/download_report/", 0) == 0, "the chat gives a download_url: " + url)) {
      checkResultsZip(check, user.get(url));
    }
  }

  AppReply cleared = user.postJson("/clear_session", "{}");
  check.expectSuccess(cleared);
  check.expect(user.appSession().empty(), "clear_session expires the app cookie: " + cleared.describe());
  AppReply after = user.get("/session_status");
  check.expect(after.status() == 200 && after.isNull("session_id") && !after.flag("csv_loaded"),
               "no session after clear_session: " + after.describe());
  AppReply gone = user.get("/export/list/" + id);
  check.expect(gone.status() == 404 && gone.isJsonError(), "the cleared session's files are gone: " + gone.describe());
}

}  // namespace

TEST_CASE("eight users upload, analyse, map, chat, export and clear at once, each on one worker throughout",
          "[integration][app]") {
  const WardDataset& large = dataset(0);
  const WardDataset& small = dataset(1);
  ProxyUnderTest proxy(appConfig());
  proxy.start();

  constexpr size_t kUsers = 8;
  const std::vector<std::string> keys = seededSessionKeys(kUsers, 0xa11f10);
  struct Run {
    std::vector<std::string> failures;
    std::vector<std::string> workers;
  };
  std::vector<Run> runs(kUsers);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kUsers; ++i) {
    threads.emplace_back([&, i] {
      const std::string name = "user" + std::to_string(i) + (i % 2 == 0 ? " (whole files)" : " (chunks)");
      Expectations check(name);
      try {
        AppClient user = userWithKey(proxy, keys[i]);
        wholeFlow(user, check, i % 4 < 2 ? large : small, i % 2 == 1, "flow-upload-" + std::to_string(i));
        runs[i].workers = user.workersSeen();
      } catch (const std::exception& error) {
        check.expect(false, std::string("transport failure: ") + error.what());
      }
      runs[i].failures = check.failures();
    });
  }
  for (std::thread& thread : threads) thread.join();

  const bool any_failed = std::any_of(runs.begin(), runs.end(), [](const Run& run) { return !run.failures.empty(); });
  if (any_failed) UNSCOPED_INFO("proxy log:\n" << fileTail(proxy.logPath(), 3000));
  std::set<std::string> workers_used;
  for (size_t i = 0; i < kUsers; ++i) {
    for (const std::string& failure : runs[i].failures) UNSCOPED_INFO(failure);
    CHECK(runs[i].failures.empty());
    const std::set<std::string> workers(runs[i].workers.begin(), runs[i].workers.end());
    INFO("user" << i << " saw " << runs[i].workers.size() << " responses from " << workers.size() << " workers");
    CHECK(runs[i].workers.size() >= 30);
    CHECK(workers.size() == 1);
    CHECK(workers.count("") == 0);
    workers_used.insert(workers.begin(), workers.end());
  }
  CHECK(workers_used.size() >= 2);  // the seeded keys spread the users

  // Nothing failed on the way as the proxy saw it either: the only errors are each user's
  // deliberate look at its cleared session's file list (the proxy may log a request just after
  // its answer went out).
  auto lookedAtCleared = [&] {
    size_t lines = 0;
    for (const AccessLogLine& line : parseAccessLog(proxy.logText())) lines += line.status == 404 ? 1 : 0;
    return lines >= kUsers;
  };
  waitUntil(lookedAtCleared, 3s);
  size_t errors = 0;
  for (const AccessLogLine& line : parseAccessLog(proxy.logText())) {
    INFO(line.raw);
    CHECK_FALSE(line.repin);
    if (line.status < 400) continue;
    ++errors;
    CHECK(line.status == 404);
    CHECK(line.path.rfind("/export/list/", 0) == 0);
  }
  CHECK(errors == kUsers);
}

TEST_CASE("without stickiness the flow breaks: analysis, chunked uploads and map files need the session's worker",
          "[integration][app]") {
  const WardDataset& data = dataset(1);
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  auto workerSockets = [&] {
    std::vector<HttpClient> connections;
    for (int i = 1; i <= 4; ++i) {
      connections.push_back(HttpClient::unixSocket(proxy.dir().file("w" + std::to_string(i) + ".sock"), 30s));
    }
    return connections;
  };

  SECTION("uploaded on w1, analysed on w2: the upload is not there") {
    AppClient user(workerSockets());
    Expectations check("hopping user");
    user.use(0);
    AppReply upload = user.uploadBothFiles("wards.csv", data.csv, "wards_shapefile.zip", data.zip);
    REQUIRE(upload.worker() == "w1");
    checkUploadAnswer(check, upload, data);
    requireNone(check);
    const std::string id = upload.text("session_id");

    user.use(1);
    AppReply elsewhere = user.postJson("/run_analysis", "{}");
    INFO(elsewhere.describe());
    CHECK(elsewhere.worker() == "w2");
    CHECK(elsewhere.status() == 400);
    CHECK(elsewhere.isJsonError());
    CHECK(elsewhere.text("message") == kUploadBothFirst);
    AppReply status = user.get("/session_status");
    CHECK(status.isNull("session_id"));
    CHECK_FALSE(status.flag("csv_loaded"));

    // The same request on the session's own worker succeeds: the hop was the only fault.
    user.use(0);
    AppReply analysis = user.postJson("/run_analysis", "{}");
    checkAnalysisAnswer(check, analysis, data.wards);
    AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
    checkMapAnswer(check, map, id);
    requireNone(check);
    const std::string web_path = map.text("web_path");
    AppReply own = user.get(web_path);
    CHECK(own.status() == 200);

    for (size_t other = 1; other < 4; ++other) {
      user.use(other);
      AppReply page = user.get(web_path);
      INFO(page.describe());
      CHECK(page.status() == 404);
      CHECK(page.isJsonError());
      CHECK(page.text("message") == kVizNotFound);
      AppReply csv = user.get("/export/download/" + id + "/unified_dataset.csv");
      INFO(csv.describe());
      CHECK(csv.status() == 404);
      CHECK(csv.isJsonError());
    }
  }

  SECTION("chunks spread over the workers: finalize finds chunks missing wherever it runs") {
    AppClient user(workerSockets());
    Expectations check("hopping uploader");
    const std::string upload_id = "spread-upload-1";
    auto round_robin = [](size_t index) { return index % 4; };
    const std::vector<AppReply> csv_chunks = user.uploadChunks(upload_id, "csv", data.csv, kChunkBytes, round_robin);
    const std::vector<AppReply> zip_chunks =
        user.uploadChunks(upload_id, "shapefile", data.zip, kChunkBytes, round_robin);
    REQUIRE(csv_chunks.size() >= 2);
    REQUIRE(zip_chunks.size() >= 2);
    std::set<std::string> chunk_workers;
    for (const AppReply& chunk : csv_chunks) {
      check.expectSuccess(chunk);  // each worker takes the piece it is given
      chunk_workers.insert(chunk.worker());
    }
    for (const AppReply& chunk : zip_chunks) check.expectSuccess(chunk);
    requireNone(check);
    CHECK(chunk_workers.size() >= 2);

    const std::regex missing("Missing chunk [0-9]+ for (csv|shapefile)");
    for (size_t worker = 0; worker < 4; ++worker) {
      user.use(worker);
      AppReply finalize =
          user.finalizeUpload(upload_id, "wards.csv", "wards_shapefile.zip", csv_chunks.size(), zip_chunks.size());
      INFO(finalize.describe());
      CHECK(finalize.status() == 400);
      CHECK(finalize.isJsonError());
      CHECK(std::regex_match(finalize.text("message"), missing));
    }
  }
}

TEST_CASE("a worker killed after upload and analysis: its user continues on another worker without uploading again",
          "[integration][app]") {
  const WardDataset& data = dataset(0);
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  AppClient user = userWithKey(proxy, seededSessionKeys(1, 0xdead01).front());
  Expectations check("user");

  AppReply upload = uploadDataset(user, check, data, false, "");
  requireNone(check);
  const std::string id = upload.text("session_id");
  AppReply analysis = user.postJson("/run_analysis", "{}");
  checkAnalysisAnswer(check, analysis, data.wards);
  AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  checkMapAnswer(check, map, id);
  AppReply rankings = user.get("/export/download/" + id + "/analysis_vulnerability_rankings.csv");
  check.expectSuccess(rankings);
  requireNone(check);

  AppReply health = user.get("/system-health");
  REQUIRE(health.status() == 200);
  const std::string victim = health.text("worker");
  const auto victim_pid = static_cast<pid_t>(health.number("pid").value_or(0));
  INFO("the session " << id.substr(0, 8) << "... is on " << victim << ", pid " << victim_pid);
  REQUIRE(victim == upload.worker());
  REQUIRE(health.worker() == victim);
  CHECK(proxy.killWorker(victim) == victim_pid);

  // The session moves on its first request after the kill, to another worker, which adopts the
  // session's files.
  AppReply status = user.get("/session_status");
  INFO(status.describe() << "\nproxy log:\n" << fileTail(proxy.logPath(), 3000));
  REQUIRE(status.status() == 200);
  const std::string heir = status.worker();
  CHECK(heir != victim);
  CHECK(status.text("session_id") == id);
  CHECK(status.flag("csv_loaded"));
  CHECK(status.flag("shapefile_loaded"));
  CHECK(status.flag("analysis_complete"));
  CHECK(status.texts("variables_used") == analysis.texts("variables_used"));
  std::vector<AccessLogLine> lines = accessLinesFor(proxy, "/session_status", 1);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back().repin);
  CHECK(lines.back().worker == heir);
  namespace fs = std::filesystem;
  const std::string state = proxy.dir().file("state");
  CHECK(fs::is_directory(state + "/" + heir + "/uploads/" + id));
  CHECK_FALSE(fs::exists(state + "/" + victim + "/uploads/" + id));

  // Everything made before the kill is still there, and new work succeeds.
  checkMapPage(user, check, map.text("web_path"));
  AppReply again = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  if (checkMapAnswer(check, again, id)) checkMapPage(user, check, again.text("web_path"));
  AppReply list = user.get("/export/list/" + id);
  const std::vector<std::string> files = listedFiles(check, list, id);
  for (const std::string& csv : kResultCsvs) {
    check.expect(contains(files, csv), "export list has " + csv + ": " + list.describe());
  }
  AppReply rankings_after = user.get("/export/download/" + id + "/analysis_vulnerability_rankings.csv");
  check.expect(rankings_after.status() == 200 && rankings_after.http.body == rankings.http.body,
               "the rankings are byte for byte those from before the kill: " + rankings_after.describe());
  AppReply rerun = user.postJson("/run_analysis", "{}");
  checkAnalysisAnswer(check, rerun, data.wards);
  for (const char* list_name : {"high_risk_wards", "medium_risk_wards", "low_risk_wards"}) {
    check.expect(rerun.texts(list_name) == analysis.texts(list_name),
                 std::string(list_name) + " unchanged by the move");
  }
  checkResultsZip(check, generateAndFetchReport(user, check, "export"));
  requireNone(check);

  // The victim comes back; the session stays where it moved.
  REQUIRE(proxy.waitForWorkerState(victim, "ready"));
  AppReply later = user.get("/session_status");
  CHECK(later.worker() == heir);
  CHECK(later.flag("analysis_complete"));
  const std::vector<std::string>& seen = user.workersSeen();
  const auto first_after = static_cast<std::ptrdiff_t>(std::find(seen.begin(), seen.end(), heir) - seen.begin());
  CHECK(std::all_of(seen.begin(), seen.begin() + first_after, [&](const std::string& w) { return w == victim; }));
  CHECK(std::all_of(seen.begin() + first_after, seen.end(), [&](const std::string& w) { return w == heir; }));
}

TEST_CASE("after a worker's death the session moves with its files whatever the user's first request is",
          "[integration][app]") {
  // A user whose worker died typically reloads the page: GET / is then the request that carries
  // X-Sticky-Previous-Worker, once.
  const std::string first_request =
      GENERATE(as<std::string>{}, "/", "/favicon.ico", "/system-health", "/session_status");
  const WardDataset& data = dataset(1);
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  AppClient user = userWithKey(proxy, seededSessionKeys(1, 0xf1257).front());
  Expectations check("user");
  AppReply upload = uploadDataset(user, check, data, false, "");
  checkAnalysisAnswer(check, user.postJson("/run_analysis", "{}"), data.wards);
  requireNone(check);
  const std::string id = upload.text("session_id");
  AppReply health = user.get("/system-health");
  CHECK(proxy.killWorker(health.worker()) == static_cast<pid_t>(health.number("pid").value_or(0)));

  AppReply first = user.get(first_request);
  INFO("first request after the move: " << first.describe());
  REQUIRE(first.status() < 500);
  CHECK(first.worker() != health.worker());
  AppReply status = user.get("/session_status");
  INFO(status.describe() << "\nproxy log:\n" << fileTail(proxy.logPath(), 2000));
  CHECK(status.text("session_id") == id);
  CHECK(status.flag("analysis_complete"));
  AppReply list = user.get("/export/list/" + id);
  CHECK(list.status() == 200);
}

TEST_CASE("a chunked upload cut by its worker's death finishes on the next worker with the chunks already sent",
          "[integration][app]") {
  const WardDataset& data = dataset(1);
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  AppClient user = userWithKey(proxy, seededSessionKeys(1, 0xc0ffee).front());
  Expectations check("uploader");
  const std::string upload_id = "interrupted-upload";
  const size_t csv_chunks = chunkCount(data.csv.size(), kChunkBytes);
  const size_t zip_chunks = chunkCount(data.zip.size(), kChunkBytes);
  REQUIRE(csv_chunks >= 2);
  auto sendChunk = [&](const std::string& file_type, const std::string& bytes, size_t index, size_t total) {
    const std::string_view piece = std::string_view(bytes).substr(index * kChunkBytes, kChunkBytes);
    AppReply reply = user.uploadChunk(upload_id, file_type, index, total, piece);
    check.expectSuccess(reply);
    check.expect(reply.number("received_chunks") == static_cast<double>(index + 1),
                 "every chunk sent so far is counted: " + reply.describe());
    return reply;
  };

  const size_t before_kill = csv_chunks / 2;
  for (size_t index = 0; index < before_kill; ++index) sendChunk("csv", data.csv, index, csv_chunks);
  requireNone(check);
  AppReply health = user.get("/system-health");
  const std::string victim = health.text("worker");
  const auto victim_pid = static_cast<pid_t>(health.number("pid").value_or(0));
  REQUIRE(victim == user.workersSeen().front());
  CHECK(proxy.killWorker(victim) == victim_pid);

  for (size_t index = before_kill; index < csv_chunks; ++index) sendChunk("csv", data.csv, index, csv_chunks);
  for (size_t index = 0; index < zip_chunks; ++index) sendChunk("shapefile", data.zip, index, zip_chunks);
  AppReply upload = user.finalizeUpload(upload_id, "wards.csv", "wards_shapefile.zip", csv_chunks, zip_chunks);
  checkUploadAnswer(check, upload, data);
  INFO(upload.describe() << "\nproxy log:\n" << fileTail(proxy.logPath(), 3000));
  CHECK(upload.worker() != victim);
  checkAnalysisAnswer(check, user.postJson("/run_analysis", "{}"), data.wards);
  requireNone(check);
}

TEST_CASE("a shapefile of over 5 MB arrives in 64 KiB chunks and is mapped", "[integration][app]") {
  TempDir dir("stickyproxy-large");
  const WardDataset large = generateWardDataset(dir.path(), 21, 500, 256);
  REQUIRE(large.zip.size() > (5u << 20));
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  AppClient user = userWithKey(proxy, seededSessionKeys(1, 0x1a26e).front());
  Expectations check("user");
  constexpr size_t kLargeChunkBytes = 64 * 1024;
  const std::vector<AppReply> csv = user.uploadChunks("large-upload-1", "csv", large.csv, kLargeChunkBytes);
  const std::vector<AppReply> zip = user.uploadChunks("large-upload-1", "shapefile", large.zip, kLargeChunkBytes);
  for (const AppReply& reply : zip) check.expectSuccess(reply);
  check.expect(zip.back().number("received_chunks") == static_cast<double>(zip.size()), "every chunk counted");
  AppReply upload = user.finalizeUpload("large-upload-1", "wards.csv", "wards_shapefile.zip", csv.size(), zip.size());
  checkUploadAnswer(check, upload, large);
  checkAnalysisAnswer(check, user.postJson("/run_analysis", "{}"), large.wards);
  AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  if (checkMapAnswer(check, map, upload.text("session_id"))) checkMapPage(user, check, map.text("web_path"));
  requireNone(check);
}

TEST_CASE("bad uploads, bad paths and bad bodies get 4xx JSON answers and leave the session working",
          "[integration][app]") {
  const WardDataset& data = dataset(1);
  ProxyUnderTest proxy(appConfig());
  proxy.start();
  AppClient user = userWithKey(proxy, seededSessionKeys(1, 0xbad1).front());
  Expectations check("user");

  // A CSV alone is taken, but there is nothing to map: no analysis, no maps.
  AppReply csv_only = user.uploadBothFiles("wards.csv", data.csv, "", "");
  INFO(csv_only.describe());
  REQUIRE(csv_only.status() == 200);
  CHECK(csv_only.text("upload_type") == "csv_only");
  CHECK(csv_only.number("data_summary.total_rows") == static_cast<double>(data.wards));
  const std::vector<std::pair<std::string, std::string>> too_early = {
      {"/run_analysis", "{}"},
      {"/get_visualization", jsonBody({{"type", "vulnerability_map"}})},
      {"/navigate_composite_map", R"({"direction":"next"})"},
      {"/generate_report", jsonBody({{"format", "html"}})},
  };
  for (const auto& [route, body] : too_early) {
    AppReply reply = user.postJson(route, body);
    INFO("before an analysis: " << reply.describe());
    CHECK(reply.status() == 400);
    CHECK(reply.isJsonError());
  }
  CHECK(user.postJson("/run_analysis", "{}").text("message") == kUploadBothFirst);

  // Every upload starts a new session id; the old one is gone.
  AppReply first = uploadDataset(user, check, data, false, "");
  AppReply second = uploadDataset(user, check, data, false, "");
  requireNone(check);
  const std::string id = second.text("session_id");
  CHECK(first.text("session_id") != csv_only.text("session_id"));
  CHECK(id != first.text("session_id"));
  CHECK(user.appSession() == id);
  AppReply old_list = user.get("/export/list/" + first.text("session_id"));
  CHECK(old_list.status() == 404);
  AppReply empty_list = user.get("/export/list/" + id);
  CHECK(empty_list.status() == 200);
  CHECK(empty_list.number("count") == 0.0);
  ChatStreamReply map_too_early = user.chat("show the vulnerability map");
  CHECK(map_too_early.endedDone());
  CHECK(map_too_early.lastText("web_path").empty());
  CHECK(map_too_early.text().find("run the analysis") != std::string::npos);
  AppReply not_drawn = user.get("/serve_viz_file/" + id + "/vulnerability_map.html");
  CHECK(not_drawn.status() == 404);
  CHECK(not_drawn.text("message") == kVizNotFound);

  // A few hand-made inputs.
  const std::string header = data.csv.substr(0, data.csv.find('\n') + 1);
  std::string no_ward_name = data.csv;
  no_ward_name.replace(no_ward_name.find("WardName"), 8, "WardLabel");
  const size_t second_line = data.csv.find('\n') + 1;
  std::string not_utf8 = data.csv;
  not_utf8.insert(second_line, "\xff\xfe");
  std::mt19937_64 random(0xc0ffee);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(random() & 0xff);
  noise[0] = 'P';  // looks like a zip at first glance
  noise[1] = 'K';
  const std::string no_dbf = storedZip({{"wards.shp", std::string(200, 's')}, {"wards.shx", std::string(100, 'x')},
                                        {"wards.prj", "GEOGCS[\"WGS 84\"]"}});
  const std::string zip_slip = storedZip({{"wards.shp", std::string(200, 's')}, {"wards.shx", std::string(100, 'x')},
                                          {"wards.dbf", std::string(100, 'd')}, {"../evil.shp", "evil"}});
  const std::string oversize_chunk((17u << 20), 'c');

  struct BadRequest {
    std::string what;
    std::function<AppReply()> send;
    int expected_status;
  };
  auto upload = [&](std::string csv_name, std::string csv, std::string zip_name, std::string zip) {
    return [&user, csv_name, csv, zip_name, zip] { return user.uploadBothFiles(csv_name, csv, zip_name, zip); };
  };
  auto post = [&](std::string path, std::string body) {
    return [&user, path, body] { return user.postJson(path, body); };
  };
  const std::string zip_name = "wards_shapefile.zip";
  const std::vector<BadRequest> uploads = {
      {"a .txt as csv_file", upload("wards.txt", data.csv, zip_name, data.zip), 400},
      {"a .csv as shapefile", upload("wards.csv", data.csv, "wards.csv", data.csv), 400},
      {"an empty CSV", upload("wards.csv", "", zip_name, data.zip), 400},
      {"a CSV of blank lines", upload("wards.csv", "\r\n\r\n", zip_name, data.zip), 400},
      {"a header-only CSV", upload("wards.csv", header, zip_name, data.zip), 400},
      {"a CSV without WardName", upload("wards.csv", no_ward_name, zip_name, data.zip), 400},
      {"a ragged row", upload("wards.csv", data.csv + "Lonely Ward,NIXXX01\n", zip_name, data.zip), 400},
      {"bytes that are not UTF-8", upload("wards.csv", not_utf8, zip_name, data.zip), 400},
      {"random bytes as a .zip", upload("wards.csv", data.csv, zip_name, noise), 400},
      {"a zip without .dbf", upload("wards.csv", data.csv, zip_name, no_dbf), 400},
      {"a zip with ../evil.shp", upload("wards.csv", data.csv, zip_name, zip_slip), 400},
      {"a 17 MiB chunk", [&] { return user.uploadChunk("oversize-chunk", "csv", 0, 1, oversize_chunk); }, 413},
      {"a chunk with upload_id ../../x", [&] { return user.uploadChunk("../../xxxxxxxx", "csv", 0, 1, "a,b\n"); }, 400},
      {"a chunk of file_type exe", [&] { return user.uploadChunk("good-upload-id", "exe", 0, 1, "MZ"); }, 400},
      {"finalize of chunks never sent",
       [&] { return user.finalizeUpload("never-sent-id", "wards.csv", zip_name, 2, 3); }, 400},
      {"a JSON upload_both_files", post("/upload_both_files", "{}"), 400},
      {"a text/plain chunk",
       [&] { return user.send("POST", "/upload/chunk", {{"Content-Type", "text/plain"}}, "chunk"); }, 400},
      {"run_analysis with a broken body", post("/run_analysis", "{not json"), 400},
      {"get_visualization with an array", post("/get_visualization", "[1,2]"), 400},
      {"finalize with a broken body", post("/upload/finalize", "nope"), 400},
      {"send_message with a broken body", post("/send_message", "{\"message\":"), 400},
      {"send_message of blanks", post("/send_message", jsonBody({{"message", "  \n "}})), 400},
      {"selected_variables not a list", post("/run_analysis", R"({"selected_variables":"WardName"})"), 400},
  };
  auto sendAll = [&](const std::vector<BadRequest>& requests) {
    for (const BadRequest& request : requests) {
      AppReply reply = request.send();
      INFO(request.what << ": " << reply.describe());
      CHECK(reply.status() == request.expected_status);
      CHECK(reply.isJsonError());
      CHECK(reply.worker() == second.worker());
    }
  };
  sendAll(uploads);

  // The session is as the last good upload left it, and the analysis runs.
  AppReply status = user.get("/session_status");
  INFO(status.describe());
  CHECK(status.text("session_id") == id);
  CHECK(status.flag("csv_loaded"));
  CHECK(status.flag("shapefile_loaded"));
  CHECK(user.appSession() == id);
  AppReply analysis = user.postJson("/run_analysis", "{}");
  checkAnalysisAnswer(check, analysis, data.wards);
  AppReply map = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  checkMapAnswer(check, map, id);
  generateAndFetchReport(user, check, "export");
  requireNone(check);

  // Requests a finished analysis refuses.
  const std::vector<std::string> defaults = analysis.texts("variables_used");
  REQUIRE(defaults.size() == kDefaultVariableCount);
  auto selecting = [](const std::vector<std::string>& variables) {
    picojson::array names;
    for (const std::string& variable : variables) names.emplace_back(variable);
    picojson::object body;
    body["selected_variables"] = picojson::value(names);
    return picojson::value(body).serialize();
  };
  const std::vector<BadRequest> views = {
      {"an unknown map type", post("/get_visualization", jsonBody({{"type", "pie_chart"}})), 400},
      {"a map without a type", post("/get_visualization", "{}"), 400},
      {"a variable map of no column",
       post("/get_visualization", jsonBody({{"type", "variable_map"}, {"variable", "no_such_column"}})), 400},
      {"a composite page direction sideways", post("/navigate_composite_map", R"({"direction":"up"})"), 400},
      {"a report in PDF", post("/generate_report", jsonBody({{"format", "pdf"}})), 400},
      {"an unknown selected variable", post("/run_analysis", selecting({defaults[0], "no_such_column"})), 400},
      {"a single selected variable", post("/run_analysis", selecting({defaults[0]})), 400},
      {"the ward names as a variable", post("/run_analysis", selecting({defaults[0], "WardName"})), 400},
  };
  sendAll(views);

  // A chosen subset of variables: three make 3 + 1 models.
  const std::vector<std::string> three(defaults.begin(), defaults.begin() + 3);
  AppReply chosen = user.postJson("/run_analysis", selecting(three));
  INFO(chosen.describe());
  CHECK(chosen.status() == 200);
  CHECK(chosen.number("model_count") == 4.0);
  CHECK(chosen.texts("variables_used") == three);
  CHECK(user.get("/session_status").texts("variables_used") == three);

  // Paths that try to leave the session's results, or name someone else's session.
  const std::string other = keyOfCookie(seededSessionKeys(1, 0x07e4).front());  // shaped like an id, not ours
  auto get = [&](std::string path) { return [&user, path] { return user.get(path); }; };
  const std::vector<BadRequest> paths = {
      {"serve_viz_file ..%2f..%2fsession.json", get("/serve_viz_file/" + id + "/..%2f..%2fsession.json"), 400},
      {"serve_viz_file ....", get("/serve_viz_file/" + id + "/...."), 400},
      {"serve_viz_file of session.json", get("/serve_viz_file/" + id + "/session.json"), 400},
      {"serve_viz_file with ../ segments", get("/serve_viz_file/" + id + "/../../session.json"), 400},
      {"serve_viz_file with a bad sid", get("/serve_viz_file/..%2f..%2fw1/vulnerability_map.html"), 400},
      {"serve_viz_file of another session", get("/serve_viz_file/" + other + "/vulnerability_map.html"), 404},
      {"export/download ..%2fdata%2fraw_data.csv", get("/export/download/" + id + "/..%2fdata%2fraw_data.csv"), 400},
      {"export/download ....", get("/export/download/" + id + "/...."), 400},
      {"export/download of session.json", get("/export/download/" + id + "/session.json"), 400},
      {"export/download of another session", get("/export/download/" + other + "/unified_dataset.csv"), 404},
      {"export/list of a bad sid", get("/export/list/..%2f..%2fstate"), 400},
      {"export/list of another session", get("/export/list/" + other), 404},
      {"download_report ..%2f..%2fsession.json", get("/download_report/..%2f..%2fsession.json"), 400},
      {"download_report ....", get("/download_report/...."), 400},
      {"download_report with ../ segments", get("/download_report/../data/raw_data.csv"), 400},
      {"download_report of a missing report", get("/download_report/no_such_report.zip"), 404},
  };
  sendAll(paths);
  AppReply not_ours = user.get("/serve_viz_file/" + other + "/vulnerability_map.html");
  CHECK(not_ours.text("message") == kVizNotFound);

  // Someone who knows the session id, routed to another worker, cannot pull the session over
  // by claiming it was moved: only the proxy says where a session was.
  std::optional<AppClient> intruder;
  for (const std::string& key : seededSessionKeys(16, 0x1a7e)) {
    AppClient candidate = userWithKey(proxy, key);
    if (candidate.get("/session_status").worker() != second.worker()) {
      intruder.emplace(std::move(candidate));
      break;
    }
  }
  REQUIRE(intruder);
  intruder->setCookie(kAppCookieName, id);
  AppReply claimed = intruder->send("GET", "/session_status", {{"X-Sticky-Previous-Worker", second.worker()}}, {});
  INFO(claimed.describe());
  CHECK(claimed.worker() != second.worker());
  CHECK(claimed.isNull("session_id"));
  CHECK_FALSE(claimed.flag("csv_loaded"));

  // Still the same session, still working; the chat can run the analysis too.
  status = user.get("/session_status");
  CHECK(status.text("session_id") == id);
  CHECK(status.flag("analysis_complete"));
  CHECK(status.text("worker") == status.worker());
  ChatStreamReply run = user.chat("run the analysis");
  if (checkChatStream(check, run)) {
    check.expect(run.text().find("Analysis complete") != std::string::npos, "the chat ran the analysis: " + run.text());
  }
  status = user.get("/session_status");
  CHECK(status.flag("analysis_complete"));
  CHECK(status.texts("variables_used") == defaults);
  AppReply redrawn = user.postJson("/get_visualization", jsonBody({{"type", "vulnerability_map"}}));
  if (checkMapAnswer(check, redrawn, id)) checkMapPage(user, check, redrawn.text("web_path"));
  requireNone(check);
}
