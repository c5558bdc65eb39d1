// Reading CSV text in tests (RFC 4180: quoted fields, doubled quotes, CRLF or LF).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stickyproxy::integration {

using CsvRow = std::vector<std::string>;

// Every record of `text`, the header included; a final line break ends the last record and
// blank lines are skipped. nullopt when a quoted field is not closed.
std::optional<std::vector<CsvRow>> parseCsv(std::string_view text);

// The values of column `name` in `rows` (rows[0] is the header), one per data row; nullopt when
// there is no such column or a row is too short for it.
std::optional<std::vector<std::string>> csvColumn(const std::vector<CsvRow>& rows, std::string_view name);

}  // namespace stickyproxy::integration
