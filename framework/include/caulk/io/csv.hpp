// CSV tables with a header row (RFC 4180: commas, double-quoted fields, "" for a quote).
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace caulk::io {

struct CsvTable {
  std::filesystem::path path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() fields
  std::vector<int> row_lines;                  // the 1-based line each row starts on

  // The index of a column; throws DataError naming the file and the columns it has.
  std::size_t column(const std::string& name) const;
  bool has_column(const std::string& name) const;
  // A field parsed as a number; throws DataError naming file:line and the column.
  double number(std::size_t row, std::size_t col) const;
};

// Throws DataError for a missing file, an empty file, a row with the wrong number of fields, an
// unterminated quote or an empty or duplicated header name.
CsvTable read_csv(const std::filesystem::path& path);
CsvTable parse_csv(std::string_view text, const std::filesystem::path& name);

// Quotes a field when it needs it.
std::string csv_field(std::string_view s);
// Writes a table atomically.
void write_csv(const std::filesystem::path& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows);

}  // namespace caulk::io
