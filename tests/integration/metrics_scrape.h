// The proxy's /metrics read by tests: series by their exposed name and labels.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "tests/integration/harness.h"

namespace stickyproxy::integration {

// Series (name with labels, as exposed, e.g. `stickyproxy_repins_total{reason="death"}`) -> value.
using Samples = std::map<std::string, double>;

// Parses the Prometheus text format; comment and malformed lines are skipped.
Samples parseExposition(const std::string& text);

// The value of `series` in `samples`, or `fallback` when it is absent.
double valueOr(const Samples& samples, const std::string& series, double fallback = 0);

struct Scrape {
  Response response;
  Samples samples;
};

// GET /metrics from 127.0.0.1:`port`.
Scrape scrape(uint16_t port);

// The value of `series` in a fresh scrape of `port`, or `fallback`.
double metricValue(uint16_t port, const std::string& series, double fallback = 0);

}  // namespace stickyproxy::integration
