#include "backend/data/csv_format.h"

namespace stickyproxy::backend::csv {

bool needsQuoting(std::string_view text) { return text.find_first_of(kSpecialCharacters) != std::string_view::npos; }

void appendField(std::string& out, std::string_view text) {
  if (!needsQuoting(text)) {
    out += text;
    return;
  }
  out += kQuote;
  for (char c : text) {
    if (c == kQuote) out += kQuote;
    out += c;
  }
  out += kQuote;
}

std::string quoteField(std::string_view text) {
  std::string out;
  appendField(out, text);
  return out;
}

}  // namespace stickyproxy::backend::csv
