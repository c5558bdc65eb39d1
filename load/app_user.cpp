#include "load/app_user.h"
#include "proxy/net/json_document.h"

#include <picojson.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace stickyproxy::load {

namespace {

// What the app answers for a session it does not know or has lost (the users' "file not found",
// "please run an analysis first", missing chunks, vanishing downloads), matched case-insensitively.
constexpr std::array<std::string_view, 11> kSessionErrorTexts = {
    "Please upload both CSV and shapefile data", "Please run the analysis first", "file not found",
    "Report not found", "Session not found", "Missing chunk", "This session changed",
    "This session's data changed", "Could not reload this session's data",
    "Could not rebuild this session's analysis", "Start by uploading your ward data",
};
constexpr std::string_view kAppCookie = "chatmrpt_session";  // backend/app/app_context.h kSessionCookie
constexpr std::string_view kChatMessage = "which wards are highest risk";
constexpr std::string_view kChatAnswerStart = "The highest-risk wards";  // backend/app/chat_routes.cpp
// The per-ward result files /run_analysis writes (backend/analysis/analysis_csv.h) and the other.
constexpr std::array<std::string_view, 4> kWardFiles = {
    "analysis_vulnerability_rankings.csv", "composite_scores.csv", "analysis_pca_results.csv", "unified_dataset.csv"};
constexpr std::string_view kFormulasFile = "model_formulas.csv";

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string sessionErrorText(std::string_view text) {
  std::string lowered = lower(text);
  for (std::string_view needle : kSessionErrorTexts) {
    if (lowered.find(lower(needle)) != std::string::npos) return std::string(needle);
  }
  return {};
}

bool startsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

std::string shortText(std::string_view text) {
  std::string out(text.substr(0, 160));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

const picojson::value& member(const picojson::value& document, const char* name) {
  static const picojson::value kNull;
  if (!document.is<picojson::object>()) return kNull;
  const auto& object = document.get<picojson::object>();
  auto found = object.find(name);
  return found == object.end() ? kNull : found->second;
}

std::string stringMember(const picojson::value& document, const char* name) {
  const picojson::value& value = member(document, name);
  return value.is<std::string>() ? value.get<std::string>() : std::string();
}

double numberMember(const picojson::value& document, const char* name) {
  const picojson::value& value = member(document, name);
  return value.is<double>() ? value.get<double>() : -1;
}

bool isSessionId(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

AppUser::AppUser(uv_loop_t* loop, uint32_t index, const UserSettings& settings, const AppDataset* data, bool chunked,
                 LoadRecorder* recorder)
    : settings_(settings),
      data_(data),
      recorder_(recorder),
      chunked_(chunked),
      agent_(loop, settings.agent),
      timer_(loop),
      rng_(settings.seed * 1000003 + index) {
  char name[32];
  std::snprintf(name, sizeof(name), "user-%04u", index + 1);
  name_ = name;
}

const char* AppUser::stepName(Action action) {
  switch (action) {
    case Action::kPage: return "GET /";
    case Action::kPageStatus: return "GET /session_status (page)";
    case Action::kUpload: return "POST /upload_both_files";
    case Action::kChunk: return "POST /upload/chunk";
    case Action::kFinalize: return "POST /upload/finalize";
    case Action::kAnalysis: return "POST /run_analysis";
    case Action::kVulnerabilityMap: return "POST /get_visualization vulnerability";
    case Action::kCompositeMap: return "POST /get_visualization composite";
    case Action::kNavigate: return "POST /navigate_composite_map";
    case Action::kVulnerabilityFile:
    case Action::kCompositeFile:
    case Action::kNavigateFile: return "GET /serve_viz_file/<sid>/<map>";
    case Action::kChat: return "POST /send_message_streaming";
    case Action::kExportList: return "GET /export/list/<sid>";
    case Action::kDownload: return "GET /export/download/<sid>/<file>";
    case Action::kStatus: return "GET /session_status";
  }
  return "?";
}

void AppUser::start(std::chrono::milliseconds delay) {
  timer_.start(delay, [this] {
    started_ = true;
    perform(Action::kPage);
  });
}

void AppUser::stop() {
  stopping_ = true;
  if (!agent_.busy()) {
    if (timer_.armed() && in_flow_) ++recorder_->flows_cut;
    timer_.stop();
    finished_ = true;
  }
}

void AppUser::abort() {
  stopping_ = true;
  timer_.stop();
  agent_.close();
  finished_ = true;
}

void AppUser::think(Action next) {
  if (stopping_) {
    if (in_flow_) ++recorder_->flows_cut;
    finished_ = true;
    return;
  }
  std::uniform_real_distribution<double> pause(settings_.think_min, settings_.think_max);
  timer_.start(std::chrono::milliseconds(static_cast<int64_t>(pause(rng_) * 1000)), [this, next] { perform(next); });
}

void AppUser::send(Action action, AgentRequest request) {
  agent_.send(std::move(request), [this, action](AgentResponse&& response) { onAnswer(action, std::move(response)); });
}

void AppUser::get(Action action, const std::string& target, std::string accept) {
  AgentRequest request;
  request.target = target;
  request.accept = std::move(accept);
  send(action, std::move(request));
}

void AppUser::postJson(Action action, const std::string& target, const picojson::value& body) {
  AgentRequest request;
  request.method = "POST";
  request.target = target;
  request.content_type = "application/json";
  request.body.push_back(Bytes::copyOf(body.serialize()));
  send(action, std::move(request));
}

void AppUser::perform(Action action) {
  if (stopping_) {
    finished_ = true;
    return;
  }
  picojson::object body;
  switch (action) {
    case Action::kPage:
      get(action, "/", "text/html");
      return;
    case Action::kPageStatus:
    case Action::kStatus:
      get(action, "/session_status");
      return;
    case Action::kUpload: {
      in_flow_ = true;
      ++flow_number_;
      sid_.clear();
      AgentRequest request;
      request.method = "POST";
      request.target = "/upload_both_files";
      std::string boundary = "----stickyproxyLoad" + std::to_string(rng_());
      request.content_type = "multipart/form-data; boundary=" + boundary;
      request.body = data_->wholeBody(boundary);
      ++recorder_->uploads_whole;
      send(action, std::move(request));
      return;
    }
    case Action::kChunk: {
      if (chunk_file_ == 0 && chunk_index_ == 0) {
        in_flow_ = true;
        ++flow_number_;
        sid_.clear();
        char id[40];
        std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                      static_cast<unsigned long long>(rng_()));
        upload_id_ = id;
        ++recorder_->uploads_chunked;
      }
      const DataFile& file = chunk_file_ == 0 ? data_->csv() : data_->shapefile();
      AgentRequest request;
      request.method = "POST";
      request.target = "/upload/chunk";
      std::string boundary = "----stickyproxyLoadChunk" + std::to_string(rng_());
      request.content_type = "multipart/form-data; boundary=" + boundary;
      request.body = AppDataset::chunkBody(boundary, upload_id_, file, chunk_index_);
      send(action, std::move(request));
      return;
    }
    case Action::kFinalize:
      body["upload_id"] = picojson::value(upload_id_);
      body["csv_filename"] = picojson::value(data_->csv().name);
      body["shapefile_filename"] = picojson::value(data_->shapefile().name);
      body["csv_total_chunks"] = picojson::value(static_cast<double>(AppDataset::chunkCount(data_->csv())));
      body["shp_total_chunks"] = picojson::value(static_cast<double>(AppDataset::chunkCount(data_->shapefile())));
      postJson(action, "/upload/finalize", picojson::value(body));
      return;
    case Action::kAnalysis:
      postJson(action, "/run_analysis", picojson::value(body));
      return;
    case Action::kVulnerabilityMap:
    case Action::kCompositeMap:
      body["type"] = picojson::value(action == Action::kVulnerabilityMap ? "vulnerability_map" : "composite_map");
      postJson(action, "/get_visualization", picojson::value(body));
      return;
    case Action::kNavigate:
      body["direction"] = picojson::value("next");
      body["current_page"] = picojson::value(1.0);
      postJson(action, "/navigate_composite_map", picojson::value(body));
      return;
    case Action::kVulnerabilityFile:
    case Action::kCompositeFile:
    case Action::kNavigateFile:
      get(action, download_url_, "text/html");
      return;
    case Action::kChat: {
      body["message"] = picojson::value(std::string(kChatMessage));
      AgentRequest request;
      request.method = "POST";
      request.target = "/send_message_streaming";
      request.content_type = "application/json";
      request.accept = "text/event-stream";
      request.body.push_back(Bytes::copyOf(picojson::value(body).serialize()));
      send(action, std::move(request));
      return;
    }
    case Action::kExportList:
      get(action, "/export/list/" + sid_);
      return;
    case Action::kDownload:
      get(action, download_url_, "text/csv");
      return;
  }
}

void AppUser::onAnswer(Action action, AgentResponse&& response) {
  bool click = false;
  Action next = action;
  if (!response.failure.empty()) {
    agent_.close();
  } else if (action == Action::kChat) {
    recorder_->request(stepName(action), response.first_byte);
    recorder_->request(std::string(stepName(action)) + " (to its end)", response.total, false);
  } else {
    recorder_->request(stepName(action), response.total);
  }
  if (response.resent) ++recorder_->resent;
  try {
    if (!response.failure.empty()) {
      // A stream cut short (its worker died mid-answer) is asked again once, as the page does.
      if (action == Action::kChat && response.status == 200 && !chat_reasked_) {
        chat_reasked_ = true;
        ++recorder_->reasked;
        perform(Action::kChat);
        return;
      }
      throw StepFailure{FailureKind::kNetwork, response.failure, {}};
    }
    noteRouting(response);
    next = check(action, response, &click);
  } catch (const StepFailure& failure) {
    FailureKind kind = failure.kind;
    bool upload = uploading(action);
    if (upload) {
      ++(chunked_ ? recorder_->failed_uploads_chunked : recorder_->failed_uploads_whole);
      if (kind != FailureKind::kSession) kind = FailureKind::kUpload;
    }
    recorder_->failure(stepName(action), kind, name_, failure.detail, failure.text);
    chunk_file_ = chunk_index_ = 0;
    in_flow_ = false;
    think(chunked_ ? Action::kChunk : Action::kUpload);  // the flow over, as a person would
    return;
  }
  if (action == Action::kStatus && in_flow_) {
    in_flow_ = false;
    ++flows_done_;
    ++recorder_->flows_completed;
  }
  if (click) {
    think(next);
  } else if (stopping_) {
    if (in_flow_) ++recorder_->flows_cut;
    finished_ = true;
  } else {
    perform(next);
  }
}

void AppUser::noteRouting(const AgentResponse& response) {
  if (const std::string* value = agent_.cookies().find(settings_.proxy_cookie)) {
    std::string key = value->substr(0, value->find('.'));
    if (!routing_key_.empty() && key != routing_key_) {
      routing_key_ = key;
      throw StepFailure{FailureKind::kSession, "the proxy replaced this user's routing key (a new session)", {}};
    }
    routing_key_ = key;
  }
  if (const std::string* worker = response.header("X-Worker")) {
    if (!worker_.empty() && *worker != worker_) ++recorder_->worker_changes;
    worker_ = *worker;
  }
}

picojson::value AppUser::jsonSuccess(const AgentResponse& response, bool upload) const {
  picojson::value document;
  std::string error = parseJsonDocument(response.body, &document);
  std::string message = error.empty() ? stringMember(document, "message") : shortText(response.body);
  std::string found = sessionErrorText(message);
  if (!found.empty()) throw StepFailure{FailureKind::kSession, "HTTP " + std::to_string(response.status) + ": " + message, found};
  FailureKind kind = upload ? FailureKind::kUpload : FailureKind::kHttp;
  if (response.status != 200) throw StepFailure{kind, "HTTP " + std::to_string(response.status) + ": " + message, {}};
  if (!error.empty() || !document.is<picojson::object>()) throw StepFailure{kind, "HTTP 200 but not a JSON object: " + message, {}};
  if (stringMember(document, "status") != "success") throw StepFailure{kind, "status not success: " + message, {}};
  return document;
}

void AppUser::requireStatus(const AgentResponse& response, int status, const char* content_type, const char* what) const {
  if (response.status != status) {
    std::string found = sessionErrorText(response.body);
    throw StepFailure{found.empty() ? FailureKind::kHttp : FailureKind::kSession,
                      "HTTP " + std::to_string(response.status) + " for " + what + ": " + shortText(response.body), found};
  }
  const std::string* type = response.header("Content-Type");
  if (type == nullptr || !startsWith(*type, content_type)) {
    throw StepFailure{FailureKind::kHttp, std::string(what) + " came as " + (type ? *type : "no type"), {}};
  }
  if (response.body.empty()) throw StepFailure{FailureKind::kHttp, std::string(what) + " is empty", {}};
}

std::string AppUser::mapFile(const AgentResponse& response, const char* what) const {
  requireStatus(response, 200, "text/html", what);
  if (response.body.find("<svg") == std::string::npos) throw StepFailure{FailureKind::kHttp, std::string(what) + " holds no SVG", {}};
  return download_url_.substr(download_url_.rfind('/') + 1);
}

void AppUser::checkUploadAnswer(const picojson::value& document) {
  std::string sid = stringMember(document, "session_id");
  if (!isSessionId(sid)) throw StepFailure{FailureKind::kUpload, "no session id in the upload answer", {}};
  if (stringMember(document, "upload_type") != "csv_shapefile") {
    throw StepFailure{FailureKind::kUpload, "upload_type " + stringMember(document, "upload_type"), {}};
  }
  std::string message = stringMember(document, "message");
  std::string wards = std::to_string(data_->wards());
  if (!startsWith(message, "Uploaded " + wards + " wards") || message.find(wards + " ward boundaries") == std::string::npos) {
    throw StepFailure{FailureKind::kUpload, "the upload answered \"" + shortText(message) + "\" for " + wards + " wards", {}};
  }
  const std::string* cookie = agent_.cookies().find(kAppCookie);
  if (cookie == nullptr || *cookie != sid) {
    throw StepFailure{FailureKind::kSession, "the upload's new session did not reach the app cookie", {}};
  }
  sid_ = sid;
}

void AppUser::checkChat(const AgentResponse& response) {
  const std::string* type = response.header("Content-Type");
  if (type == nullptr || !startsWith(*type, "text/event-stream")) {
    jsonSuccess(response, false);  // an error answers JSON: its message says what
    throw StepFailure{FailureKind::kHttp, "a JSON answer instead of a stream", {}};
  }
  std::string reply;
  size_t events = 0;
  bool done = false;
  size_t pos = 0;
  const std::string& text = response.body;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    std::string_view event(text.data() + pos, (end == std::string::npos ? text.size() : end) - pos);
    pos = end == std::string::npos ? text.size() : end + 2;
    std::string data;
    size_t line_start = 0;
    while (line_start < event.size()) {
      size_t line_end = event.find('\n', line_start);
      std::string_view line = event.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos : line_end - line_start);
      line_start = line_end == std::string_view::npos ? event.size() : line_end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (startsWith(line, "data:")) {
        std::string_view value = line.substr(5);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (!data.empty()) data += '\n';
        data.append(value);
      }
    }
    if (data.empty()) continue;
    ++events;
    picojson::value document;
    if (!parseJsonDocument(data, &document).empty()) throw StepFailure{FailureKind::kHttp, "a chat event is not JSON", {}};
    reply += stringMember(document, "content");
    const picojson::value& finished = member(document, "done");
    if (finished.is<bool>() && finished.get<bool>()) done = true;
  }
  std::string found = sessionErrorText(reply);
  if (!found.empty()) throw StepFailure{FailureKind::kSession, "the chat answered \"" + shortText(reply) + "\"", found};
  if (response.status != 200) throw StepFailure{FailureKind::kHttp, "HTTP " + std::to_string(response.status) + " for the stream", {}};
  if (!done) throw StepFailure{FailureKind::kHttp, "the stream ended after " + std::to_string(events) + " events without its done event", {}};
  if (events < 2) throw StepFailure{FailureKind::kHttp, "the answer came in one event, not streamed", {}};
  if (!startsWith(reply, kChatAnswerStart)) throw StepFailure{FailureKind::kHttp, "the chat answered \"" + shortText(reply) + "\"", {}};
}

AppUser::Action AppUser::check(Action action, const AgentResponse& response, bool* click) {
  *click = true;
  switch (action) {
    case Action::kPage:
      requireStatus(response, 200, "text/html", "the page");
      if (lower(response.body.substr(0, 4096)).find("<html") == std::string::npos) {
        throw StepFailure{FailureKind::kHttp, "GET / is not the page", {}};
      }
      *click = false;
      return Action::kPageStatus;
    case Action::kPageStatus:
      {
        picojson::value document = jsonSuccess(response, false);
        if (!document.get<picojson::object>().count("session_id")) {
          throw StepFailure{FailureKind::kHttp, "no session_id in the status", {}};
        }
      }
      return chunked_ ? Action::kChunk : Action::kUpload;  // after choosing the files
    case Action::kUpload:
      checkUploadAnswer(jsonSuccess(response, true));
      return Action::kAnalysis;
    case Action::kChunk: {
      picojson::value document = jsonSuccess(response, true);
      if (numberMember(document, "received_chunks") != static_cast<double>(chunk_index_ + 1)) {
        throw StepFailure{FailureKind::kSession, "after chunk " + std::to_string(chunk_index_ + 1) +
                                                     " the worker holds another count of them", {}};
      }
      const DataFile& file = chunk_file_ == 0 ? data_->csv() : data_->shapefile();
      *click = false;
      if (++chunk_index_ < AppDataset::chunkCount(file)) return Action::kChunk;
      chunk_index_ = 0;
      if (++chunk_file_ < 2) return Action::kChunk;
      chunk_file_ = 0;
      return Action::kFinalize;
    }
    case Action::kFinalize:
      checkUploadAnswer(jsonSuccess(response, true));
      return Action::kAnalysis;
    case Action::kAnalysis: {
      picojson::value document = jsonSuccess(response, false);
      if (numberMember(document, "ward_count") != static_cast<double>(data_->wards())) {
        throw StepFailure{FailureKind::kHttp, "ward_count is not " + std::to_string(data_->wards()), {}};
      }
      const picojson::value& high = member(document, "high_risk_wards");
      if (!high.is<picojson::array>() || high.get<picojson::array>().empty()) {
        throw StepFailure{FailureKind::kHttp, "no high-risk wards", {}};
      }
      return Action::kVulnerabilityMap;
    }
    case Action::kVulnerabilityMap:
    case Action::kCompositeMap:
    case Action::kNavigate: {
      picojson::value document = jsonSuccess(response, false);
      if (action == Action::kCompositeMap &&
          (numberMember(document, "current_page") != 1 || numberMember(document, "total_pages") < 2)) {
        throw StepFailure{FailureKind::kHttp, "composite paging is not page 1 of at least 2", {}};
      }
      if (action == Action::kNavigate && numberMember(document, "current_page") != 2) {
        throw StepFailure{FailureKind::kHttp, "next from page 1 did not give page 2", {}};
      }
      download_url_ = stringMember(document, "web_path");
      if (!startsWith(download_url_, "/serve_viz_file/" + sid_ + "/")) {
        throw StepFailure{FailureKind::kSession, "the map link " + shortText(download_url_) + " is not this session's", {}};
      }
      *click = false;
      return action == Action::kVulnerabilityMap ? Action::kVulnerabilityFile
             : action == Action::kCompositeMap   ? Action::kCompositeFile
                                                 : Action::kNavigateFile;
    }
    case Action::kVulnerabilityFile:
      vulnerability_file_ = mapFile(response, "the vulnerability map");
      return Action::kCompositeMap;
    case Action::kCompositeFile:
      composite_file_ = mapFile(response, "composite page 1");
      return Action::kNavigate;
    case Action::kNavigateFile:
      second_file_ = mapFile(response, "composite page 2");
      if (second_file_ == composite_file_) throw StepFailure{FailureKind::kHttp, "page 2 is the same file as page 1", {}};
      chat_reasked_ = false;
      return Action::kChat;
    case Action::kChat:
      checkChat(response);
      return Action::kExportList;
    case Action::kExportList: {
      picojson::value document = jsonSuccess(response, false);
      std::set<std::string> listed;
      const picojson::value& files = member(document, "files");
      std::string chosen(kWardFiles[std::uniform_int_distribution<size_t>(0, kWardFiles.size() - 1)(rng_)]);
      download_url_.clear();
      if (files.is<picojson::array>()) {
        for (const picojson::value& entry : files.get<picojson::array>()) {
          std::string filename = stringMember(entry, "filename");
          listed.insert(filename);
          if (filename == chosen) download_url_ = stringMember(entry, "url");
        }
      }
      for (std::string_view expected : {std::string_view(vulnerability_file_), std::string_view(composite_file_),
                                        std::string_view(second_file_), kFormulasFile, kWardFiles[0], kWardFiles[1],
                                        kWardFiles[2], kWardFiles[3]}) {
        if (listed.count(std::string(expected)) == 0) {
          throw StepFailure{FailureKind::kSession, "the export list lacks " + std::string(expected) + " (download links vanished)", {}};
        }
      }
      if (download_url_ != "/export/download/" + sid_ + "/" + chosen) {
        throw StepFailure{FailureKind::kSession, "the export list links " + chosen + " elsewhere", {}};
      }
      download_name_ = chosen;
      return Action::kDownload;
    }
    case Action::kDownload: {
      requireStatus(response, 200, "text/csv", download_name_.c_str());
      const std::string* disposition = response.header("Content-Disposition");
      if (disposition == nullptr || disposition->find("attachment") == std::string::npos) {
        throw StepFailure{FailureKind::kHttp, download_name_ + " is not sent as an attachment", {}};
      }
      std::string problem = data_->checkWardRows(response.body);
      if (!problem.empty()) throw StepFailure{FailureKind::kHttp, download_name_ + " does not match the upload: " + problem, {}};
      return Action::kStatus;
    }
    case Action::kStatus: {
      picojson::value document = jsonSuccess(response, false);
      auto flag = [&](const char* name) {
        const picojson::value& value = member(document, name);
        return value.is<bool>() && value.get<bool>();
      };
      if (stringMember(document, "session_id") != sid_ || !flag("csv_loaded") || !flag("shapefile_loaded") ||
          !flag("analysis_complete")) {
        throw StepFailure{FailureKind::kSession, "the app lost the session's state (expected " + sid_ + ", loaded and analysed)", {}};
      }
      return chunked_ ? Action::kChunk : Action::kUpload;
    }
  }
  return Action::kUpload;
}

}  // namespace stickyproxy::load
