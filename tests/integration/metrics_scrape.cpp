#include "tests/integration/metrics_scrape.h"

#include <cstdlib>
#include <sstream>

namespace stickyproxy::integration {

Samples parseExposition(const std::string& text) {
  Samples samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return samples;
}

double valueOr(const Samples& samples, const std::string& series, double fallback) {
  auto it = samples.find(series);
  return it == samples.end() ? fallback : it->second;
}

Scrape scrape(uint16_t port) {
  HttpClient client(port, std::chrono::seconds(10));
  Scrape result;
  result.response = client.get("/metrics");
  result.samples = parseExposition(result.response.body);
  return result;
}

double metricValue(uint16_t port, const std::string& series, double fallback) {
  return valueOr(scrape(port).samples, series, fallback);
}

}  // namespace stickyproxy::integration
