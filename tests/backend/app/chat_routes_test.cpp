#include "backend/app/chat_routes.h"

#include <catch2/catch.hpp>

using namespace stickyproxy::backend;

TEST_CASE("understandMessage reads the chat intents the assistant acts on", "[app]") {
  CHECK(understandMessage("Please run the analysis").intent == ChatIntent::kRunAnalysis);
  CHECK(understandMessage("which wards are highest risk?").intent == ChatIntent::kHighestRisk);
  CHECK(understandMessage("What should we PRIORITISE?").intent == ChatIntent::kHighestRisk);
  CHECK(understandMessage("download").intent == ChatIntent::kDownload);
  CHECK(understandMessage("can I export the results").intent == ChatIntent::kDownload);
  CHECK(understandMessage("hello").intent == ChatIntent::kHelp);

  ChatRequest map = understandMessage("Show the vulnerability map");
  CHECK(map.intent == ChatIntent::kShowMap);
  CHECK(map.map_type == "vulnerability_map");
  CHECK(understandMessage("show me the PCA map").map_type == "pca_map");
  CHECK(understandMessage("show the composite maps").map_type == "composite_map");
  CHECK(understandMessage("box plot please").map_type == "box_plot");
}

TEST_CASE("chatTokens splits text into words that join back to the text", "[app]") {
  std::vector<std::string> tokens = chatTokens("The highest-risk wards  are A, B.");
  REQUIRE(tokens.size() == 5);
  CHECK(tokens[0] == "The ");
  CHECK(tokens[2] == "wards  ");
  std::string joined;
  for (const std::string& token : tokens) joined += token;
  CHECK(joined == "The highest-risk wards  are A, B.");
  CHECK(chatTokens("").empty());
  CHECK(chatTokens("one") == std::vector<std::string>{"one"});
}
