#include "proxy/core/routing_state.h"

#include <cerrno>
#include <utility>

#include <picojson.h>

#include "proxy/core/access_log.h"
#include "proxy/net/file_util.h"
#include "proxy/net/json_document.h"

namespace stickyproxy {

namespace {
// How often the session table's active counts and expiry catch up with the clock.
constexpr std::chrono::seconds kExpireInterval{1};
constexpr const char* kWorkerStatesFormat = "stickyproxy-worker-states";
}  // namespace

RoutingState::RoutingState(uv_loop_t* loop, const Config& config)
    : config_(config),
      sessions_(config.routing.session_idle, config.routing.moved_key_idle, config.routing.max_sessions),
      session_saver_(loop, &sessions_, movedKeysPath()),
      expire_timer_(loop) {}

bool RoutingState::start() {
  if (!loadCookieSigner()) return false;
  std::string error;
  if (!sessions_.load(movedKeysPath(), std::chrono::system_clock::now(), &error)) {
    logError("cannot load " + movedKeysPath() + ": " + error + " (starting with no moved keys)");
  } else if (sessions_.movedCount() > 0) {
    logInfo("loaded " + std::to_string(sessions_.movedCount()) + " moved session keys from " + movedKeysPath());
  }
  expire_timer_.startRepeating(kExpireInterval, [this] {
    size_t moved_before = sessions_.movedCount();
    sessions_.advance(std::chrono::system_clock::now());
    if (sessions_.movedCount() != moved_before) sessionsChanged();
  });
  started_ = true;
  return true;
}

void RoutingState::flush(std::function<void()> done) {
  if (!started_) {
    done();
    return;
  }
  session_saver_.flush(std::move(done));
}

void RoutingState::stop() { expire_timer_.stop(); }

void RoutingState::applyConfig() {
  sessions_.setLimits(config_.routing.session_idle, config_.routing.moved_key_idle, config_.routing.max_sessions);
  loadCookieSigner();
}

bool RoutingState::loadCookieSigner() {
  std::string error;
  std::optional<std::vector<std::string>> secrets = loadCookieSecrets(config_.routing.secret_file, true, &error);
  if (!secrets) {
    logError("routing secret: " + error);
    return false;
  }
  cookie_signer_ = std::make_shared<const CookieSigner>(std::move(*secrets));
  return true;
}

std::string RoutingState::movedKeysPath() const { return config_.state_dir + "/moved-keys.json"; }

std::string RoutingState::workerStatesPath() const { return config_.state_dir + "/worker-states.json"; }

void RoutingState::saveDrainedWorkers(const std::set<std::string>& names) const {
  // {"format": "stickyproxy-worker-states", "version": 1, "draining": ["w2"]}
  picojson::array draining;
  for (const std::string& name : names) draining.emplace_back(name);
  picojson::object root;
  root["format"] = picojson::value(kWorkerStatesFormat);
  root["version"] = picojson::value(1.0);
  root["draining"] = picojson::value(draining);
  std::string error;
  if (!writeFileAtomically(workerStatesPath(), picojson::value(root).serialize() + "\n", &error)) {
    logError("cannot save the admin's worker states: " + error);
  }
}

std::set<std::string> RoutingState::loadDrainedWorkers() const {
  std::set<std::string> names;
  std::string text;
  if (!readWholeFile(workerStatesPath(), &text)) {
    if (errno != ENOENT) logError("cannot read " + workerStatesPath() + ": " + errnoText(errno));
    return names;
  }
  picojson::value root;
  std::string parse_error = parseJsonDocument(text, &root);
  const picojson::value* draining = nullptr;
  if (parse_error.empty() && root.is<picojson::object>()) {
    const picojson::object& top = root.get<picojson::object>();
    auto format = top.find("format");
    auto list = top.find("draining");
    if (format != top.end() && format->second.is<std::string>() &&
        format->second.get<std::string>() == kWorkerStatesFormat && list != top.end() &&
        list->second.is<picojson::array>()) {
      draining = &list->second;
    }
  }
  if (draining == nullptr) {
    logError("ignoring " + workerStatesPath() + ": not a worker-states file" +
             (parse_error.empty() ? "" : " (" + parse_error + ")") + "; every worker starts in rotation");
    return names;
  }
  for (const picojson::value& name : draining->get<picojson::array>()) {
    if (name.is<std::string>() && config_.findWorker(name.get<std::string>()) != nullptr) {
      names.insert(name.get<std::string>());
      logInfo("worker " + name.get<std::string>() + " stays out of rotation (drained by the admin before)");
    }
  }
  return names;
}

}  // namespace stickyproxy
