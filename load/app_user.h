// One simulated person in a browser doing the app's whole flow, over and over, with think time:
// open the page; upload (whole, or in 2 MiB chunks as the page does for big files); run the
// analysis; the vulnerability map; composite map pages 1 and 2; a streamed chat answer; the export
// list; one result download checked against the uploaded wards; the session's status.
//
// A step fails the way a user would notice it (status, content, a session-error text of the app,
// a routing cookie the proxy replaced); after a failure the user starts the flow over.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "load/app_dataset.h"
#include "load/load_recorder.h"
#include "load/user_agent.h"
#include "proxy/net/timer.h"

namespace picojson {
class value;
}

namespace stickyproxy::load {

struct UserSettings {
  UserAgent::Settings agent;
  double think_min = 0.3;  // seconds between two clicks
  double think_max = 1.2;
  uint64_t seed = 7;
  std::string proxy_cookie = "stickyproxy";  // the proxy's routing cookie: its key must never change
};

class AppUser {
 public:
  AppUser(uv_loop_t* loop, uint32_t index, const UserSettings& settings, const AppDataset* data, bool chunked,
          LoadRecorder* recorder);
  AppUser(const AppUser&) = delete;
  AppUser& operator=(const AppUser&) = delete;

  // Opens the page after `delay`, then repeats the flow.
  void start(std::chrono::milliseconds delay);
  // Starts no further step; a flow under way is cut short at its next click.
  void stop();
  // Stops at once: the request in flight, if any, is dropped.
  void abort();
  bool started() const { return started_; }
  bool finished() const { return finished_; }
  bool waiting() const { return agent_.busy(); }
  const std::string& name() const { return name_; }
  const std::string& worker() const { return worker_; }
  bool chunked() const { return chunked_; }
  uint64_t flowsDone() const { return flows_done_; }
  uint64_t connectionsOpened() const { return agent_.connectionsOpened(); }

 private:
  enum class Action {
    kPage, kPageStatus, kUpload, kChunk, kFinalize, kAnalysis, kVulnerabilityMap, kVulnerabilityFile,
    kCompositeMap, kCompositeFile, kNavigate, kNavigateFile, kChat, kExportList, kDownload, kStatus,
  };
  // Thrown by the checks of an answer; caught in onAnswer.
  struct StepFailure {
    FailureKind kind;
    std::string detail;
    std::string text;  // the session-error text found
  };

  static const char* stepName(Action action);
  void think(Action next);
  void perform(Action action);
  void onAnswer(Action action, AgentResponse&& response);
  // Checks the answer and returns the action that follows `action` without a click in between,
  // or the next click's action (returned through *click).
  Action check(Action action, const AgentResponse& response, bool* click);
  void send(Action action, AgentRequest request);
  void postJson(Action action, const std::string& target, const picojson::value& body);
  void get(Action action, const std::string& target, std::string accept = "application/json");

  picojson::value jsonSuccess(const AgentResponse& response, bool upload) const;
  void requireStatus(const AgentResponse& response, int status, const char* content_type, const char* what) const;
  std::string mapFile(const AgentResponse& response, const char* what) const;
  void checkUploadAnswer(const picojson::value& document);
  void checkChat(const AgentResponse& response);
  void noteRouting(const AgentResponse& response);
  bool uploading(Action action) const { return action == Action::kUpload || action == Action::kChunk || action == Action::kFinalize; }

  const UserSettings& settings_;
  const AppDataset* data_;
  LoadRecorder* recorder_;
  std::string name_;
  bool chunked_;
  UserAgent agent_;
  Timer timer_;
  std::mt19937_64 rng_;

  bool started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool in_flow_ = false;
  bool chat_reasked_ = false;
  uint64_t flow_number_ = 0;
  uint64_t flows_done_ = 0;
  std::string worker_;
  std::string routing_key_;
  // This flow's state.
  std::string sid_;
  std::string upload_id_;
  size_t chunk_file_ = 0;  // 0: the CSV, 1: the shapefile
  size_t chunk_index_ = 0;
  std::string vulnerability_file_;
  std::string composite_file_;
  std::string second_file_;
  std::string download_name_;
  std::string download_url_;
};

}  // namespace stickyproxy::load
