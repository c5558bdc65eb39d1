#include "backend/analysis/variable_selection.h"

#include <algorithm>
#include <cctype>

namespace stickyproxy::backend {
namespace {

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

enum class Match { kFound, kUnknown, kAmbiguous };

struct Resolved {
  Match match;
  const NumericColumn* column;
};

Resolved resolveColumn(const WardTable& table, std::string_view name) {
  if (const NumericColumn* exact = table.findColumn(name)) return {Match::kFound, exact};
  const NumericColumn* found = nullptr;
  for (const NumericColumn& column : table.columns) {
    if (!equalsIgnoringCase(column.name, name)) continue;
    if (found != nullptr) return {Match::kAmbiguous, nullptr};
    found = &column;
  }
  return {found != nullptr ? Match::kFound : Match::kUnknown, found};
}

bool isTextColumn(const WardTable& table, std::string_view name) {
  return std::any_of(table.text_columns.begin(), table.text_columns.end(),
                     [&](const std::string& text) { return equalsIgnoringCase(text, name); });
}

bool hasObservedValue(const NumericColumn& column) {
  return std::any_of(column.values.begin(), column.values.end(),
                     [](const auto& value) { return value.has_value(); });
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

Expected<std::vector<std::string>> selectVariables(const WardTable& table,
                                                   const std::vector<std::string>& requested,
                                                   size_t default_count) {
  std::vector<std::string> selected;
  const auto add = [&selected](const std::string& name) {
    if (std::find(selected.begin(), selected.end(), name) == selected.end()) {
      selected.push_back(name);
    }
  };

  if (!requested.empty()) {
    for (const std::string& name : requested) {
      const Resolved resolved = resolveColumn(table, name);
      switch (resolved.match) {
        case Match::kFound:
          add(resolved.column->name);
          break;
        case Match::kAmbiguous:
          return AnalysisError{"Variable '" + name +
                               "' matches several columns that differ only in case"};
        case Match::kUnknown:
          if (isTextColumn(table, name)) {
            return AnalysisError{"Variable '" + name + "' is not numeric"};
          }
          return AnalysisError{"Unknown variable '" + name + "'"};
      }
    }
  } else {
    for (std::string_view preferred : kDefaultVariablePreference) {
      if (selected.size() >= default_count) break;
      const Resolved resolved = resolveColumn(table, preferred);
      if (resolved.match == Match::kFound && hasObservedValue(*resolved.column)) {
        add(resolved.column->name);
      }
    }
    if (selected.size() < 2) {
      return AnalysisError{
          "The data has fewer than 2 of the default variables (pfpr, u5_tpr_rdt, "
          "mean_rainfall, ...); please select at least 2 numeric variables"};
    }
  }

  if (selected.size() < 2) {
    return AnalysisError{"At least 2 variables are needed to build composite models; got " +
                         std::to_string(selected.size()) +
                         (selected.empty() ? "" : " (" + joined(selected) + ")")};
  }
  if (selected.size() > kMaxVariables) {
    return AnalysisError{"At most " + std::to_string(kMaxVariables) +
                         " variables can be analysed at once; got " +
                         std::to_string(selected.size())};
  }
  return selected;
}

}  // namespace stickyproxy::backend
