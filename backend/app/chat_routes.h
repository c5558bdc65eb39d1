// POST /send_message_streaming and POST /send_message: the app's chat assistant.
//
// The real app answered through a language model; this one understands a few intents (run the
// analysis, show a map, which wards are highest risk, download the results, help) and acts on
// the session, so a chat exercises the same per-worker state as the buttons do. Streaming answers
// are sent as Server-Sent Events, one token per event, flushed one by one.
#pragma once

#include <string>
#include <string_view>

#include "backend/app/app_context.h"
#include "backend/app/export_routes.h"
#include "backend/app/session_operations.h"
#include "backend/app/visualization_routes.h"

namespace stickyproxy::backend {

enum class ChatIntent { kRunAnalysis, kShowMap, kHighestRisk, kDownload, kHelp };

// What a message asks for. `map_type` is set for kShowMap (vulnerability_map unless the message
// names the PCA map, the composite maps or the box plot).
struct ChatRequest {
  ChatIntent intent = ChatIntent::kHelp;
  std::string map_type;
};

// Reads the intent of `message` (case-insensitive keywords).
ChatRequest understandMessage(std::string_view message);

// The assistant's reply: text, plus a map or download to show.
struct ChatReply {
  std::string text;
  std::string web_path;
  std::string download_url;
};

// Splits `text` into the pieces streamed one per event: each word with the spaces after it.
std::vector<std::string> chatTokens(std::string_view text);

class ChatRoutes {
 public:
  ChatRoutes(AppContext& app, SessionOperations& operations, VisualizationRoutes& visualizations,
             ExportRoutes& exports)
      : app_(app), operations_(operations), visualizations_(visualizations), exports_(exports) {}

  // JSON {message}. `streaming`: a text/event-stream of data: {"content", "done": false} events
  // and a last {"content": "", "done": true, web_path?, download_url?}; otherwise one JSON answer
  // {status, response, web_path?, download_url?}.
  void sendMessage(const ServerExchangePtr& exchange, bool streaming);

 private:
  // Acts on `request` for the session (nullptr: none yet) and calls `done` with the reply.
  void reply(SessionState* session, const ChatRequest& request, std::function<void(ChatReply)> done);
  void stream(const ServerExchangePtr& exchange, const ChatReply& reply);

  AppContext& app_;
  SessionOperations& operations_;
  VisualizationRoutes& visualizations_;
  ExportRoutes& exports_;
};

}  // namespace stickyproxy::backend
