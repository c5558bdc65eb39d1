#include "backend/app/chat_routes.h"

#include <memory>

#include "backend/app/exchange_io.h"
#include "backend/data/text_util.h"
#include "proxy/net/timer.h"

namespace stickyproxy::backend {

namespace {

constexpr size_t kMaxMessageBytes = 4000;

bool containsAny(std::string_view text, std::initializer_list<std::string_view> words) {
  for (std::string_view word : words) {
    if (text.find(word) != std::string_view::npos) return true;
  }
  return false;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " and " : ", ";
    text += names[i];
  }
  return text;
}

std::string sseEvent(const picojson::object& event) { return "data: " + picojson::value(event).serialize() + "\n\n"; }

// Sends a reply's tokens one per timer tick, then the closing event; stops if the client goes.
class ChatStream : public ExchangeHandler, public std::enable_shared_from_this<ChatStream> {
 public:
  ChatStream(uv_loop_t* loop, std::weak_ptr<ServerExchange> exchange, ChatReply reply,
             std::chrono::milliseconds interval)
      : exchange_(std::move(exchange)), reply_(std::move(reply)), tokens_(chatTokens(reply_.text)),
        interval_(interval), timer_(loop) {}

  void start() { sendNext(); }
  void onAbort(const std::string&) override { timer_.stop(); }

 private:
  void sendNext() {
    auto exchange = exchange_.lock();
    if (!exchange || !exchange->active()) return;
    picojson::object event;
    if (next_ < tokens_.size()) {
      event["content"] = picojson::value(tokens_[next_++]);
      event["done"] = picojson::value(false);
      exchange->sendBody(sseEvent(event));
      std::weak_ptr<ChatStream> weak = shared_from_this();
      timer_.start(interval_, [weak] {
        if (auto self = weak.lock()) self->sendNext();
      });
      return;
    }
    event["content"] = picojson::value("");
    event["done"] = picojson::value(true);
    if (!reply_.web_path.empty()) event["web_path"] = picojson::value(reply_.web_path);
    if (!reply_.download_url.empty()) event["download_url"] = picojson::value(reply_.download_url);
    exchange->sendBody(sseEvent(event));
    exchange->finish();
  }

  std::weak_ptr<ServerExchange> exchange_;
  ChatReply reply_;
  std::vector<std::string> tokens_;
  size_t next_ = 0;
  std::chrono::milliseconds interval_;
  Timer timer_;
};

}  // namespace

ChatRequest understandMessage(std::string_view message) {
  const std::string text = lowerAscii(message);
  ChatRequest request;
  if (containsAny(text, {"download", "export", "report", "zip"})) {
    request.intent = ChatIntent::kDownload;
  } else if (containsAny(text, {"run", "start", "perform"}) && containsAny(text, {"analys"})) {
    request.intent = ChatIntent::kRunAnalysis;
  } else if (containsAny(text, {"map", "plot", "show", "visuali", "chart"})) {
    request.intent = ChatIntent::kShowMap;
    request.map_type = containsAny(text, {"pca"})         ? "pca_map"
                       : containsAny(text, {"composite"}) ? "composite_map"
                       : containsAny(text, {"box"})       ? "box_plot"
                                                          : "vulnerability_map";
  } else if (containsAny(text, {"highest", "high risk", "high-risk", "most vulnerable", "top", "riskiest",
                                "priorit"})) {
    request.intent = ChatIntent::kHighestRisk;
  }
  return request;
}

std::vector<std::string> chatTokens(std::string_view text) {
  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    end = end == std::string_view::npos ? text.size() : text.find_first_not_of(' ', end);
    if (end == std::string_view::npos) end = text.size();
    tokens.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return tokens;
}

void ChatRoutes::sendMessage(const ServerExchangePtr& exchange, bool streaming) {
  std::weak_ptr<ServerExchange> weak = exchange;
  readJsonBody(app_, exchange, [this, weak, streaming](picojson::object body) {
    auto live = weak.lock();
    if (!live) return;
    std::string message = stringMember(body, "message");
    if (message.find_first_not_of(" \t\r\n") == std::string::npos) {
      return app_.respondError(live, ErrorKind::kBadInput, "Please type a message");
    }
    if (message.size() > kMaxMessageBytes) return app_.respondError(live, ErrorKind::kBadInput, "Message too long");
    SessionState* session = app_.sessionOf(live->request());
    reply(session, understandMessage(message), [this, weak, streaming](ChatReply answer) {
      auto client = weak.lock();
      if (!client) return;
      if (streaming) return stream(client, answer);
      picojson::object fields;
      fields["response"] = picojson::value(answer.text);
      if (!answer.web_path.empty()) fields["web_path"] = picojson::value(answer.web_path);
      if (!answer.download_url.empty()) fields["download_url"] = picojson::value(answer.download_url);
      app_.respond(client, Answer::success(std::move(fields)));
    });
  });
}

void ChatRoutes::stream(const ServerExchangePtr& exchange, const ChatReply& reply) {
  ResponseHead head;
  head.headers = app_.baseHeaders();
  head.headers.set("Cache-Control", "no-cache");
  head.headers.add("Content-Type", "text/event-stream; charset=utf-8");
  head.headers.add("X-Accel-Buffering", "no");
  exchange->sendHead(std::move(head), std::nullopt);
  auto stream = std::make_shared<ChatStream>(app_.loop(), exchange, reply, app_.options().chat_token_interval);
  exchange->setHandler(stream);
  stream->start();
}

void ChatRoutes::reply(SessionState* session, const ChatRequest& request, std::function<void(ChatReply)> done) {
  const bool has_data = session != nullptr && session->csv_loaded && session->shapefile_loaded;
  const bool analysed = session != nullptr && session->analysis_complete;
  auto say = [&done](std::string text) { done(ChatReply{std::move(text), {}, {}}); };
  if (request.intent == ChatIntent::kHelp || !has_data) {
    if (!has_data) {
      return say("Hello! I help you prioritise wards for malaria interventions. Start by uploading your ward data "
                 "(a CSV with WardName and your variables) together with the ward boundaries (a zipped shapefile). "
                 "Then ask me to run the analysis.");
    }
    return say(analysed ? "Your analysis is ready. Ask me to show the vulnerability map, the PCA map, the composite "
                          "maps or the box plot, which wards are highest risk, or to download the results."
                        : "Your data is loaded. Ask me to run the analysis to rank the wards by malaria risk.");
  }
  const std::string id = session->id;
  switch (request.intent) {
    case ChatIntent::kRunAnalysis:
      operations_.runAnalysis(id, {}, [done](Answer answer) {
        if (!answer.ok()) return done(ChatReply{"I could not run the analysis: " + answer.message(), {}, {}});
        std::vector<std::string> high;
        for (const picojson::value& name : answer.body["high_risk_wards"].get<picojson::array>()) {
          high.push_back(name.get<std::string>());
        }
        high.resize(std::min<size_t>(high.size(), 5));
        done(ChatReply{answer.message() + ". The highest-risk wards include " + joinNames(high) +
                           ". Ask me to show the vulnerability map to see them.",
                       {}, {}});
      });
      return;
    case ChatIntent::kShowMap:
      if (!analysed) return say("Please run the analysis first; then I can draw the maps.");
      visualizations_.render(id, ViewRequest{request.map_type, "", 1}, [done](Answer answer) {
        if (!answer.ok()) return done(ChatReply{"I could not draw that map: " + answer.message(), {}, {}});
        done(ChatReply{"Here is the " + answer.body["title"].get<std::string>() +
                           ". Hover over a ward to see its name and score.",
                       answer.body["web_path"].get<std::string>(), {}});
      });
      return;
    case ChatIntent::kHighestRisk:
      operations_.withLoadedSession(id, true, [done](SessionState* loaded, std::optional<Answer> failure) {
        if (failure) return done(ChatReply{failure->message(), {}, {}});
        if (loaded == nullptr || !loaded->analysis) {
          return done(ChatReply{"Please run the analysis first; then I can rank the wards.", {}, {}});
        }
        const auto& high = loaded->analysis->high_risk_wards;
        done(ChatReply{"The highest-risk wards, by median composite score, are " + joinNames(high) + ".", {}, {}});
      });
      return;
    case ChatIntent::kDownload:
      if (!analysed) return say("Please run the analysis first; then the results can be downloaded.");
      exports_.buildReport(id, "export", [done](Answer answer) {
        if (!answer.ok()) return done(ChatReply{"I could not build the download: " + answer.message(), {}, {}});
        done(ChatReply{"Your results are ready: the rankings, scores, maps and a summary, in one zip file.", {},
                       answer.body["download_url"].get<std::string>()});
      });
      return;
    case ChatIntent::kHelp:
      break;
  }
}

}  // namespace stickyproxy::backend
