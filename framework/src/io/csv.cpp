// CSV (RFC 4180) reading and writing, with errors located by file and line.
#include "caulk/io/csv.hpp"

#include <charconv>
#include <new>
#include <stdexcept>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/mapped_file.hpp"
#include "messages.hpp"

namespace caulk::io {

namespace {

// Splits text into records of fields, keeping the line each record starts on. Quoted fields may
// hold commas, newlines and "" for a quote. Blank lines are skipped.
class CsvParser {
 public:
  CsvParser(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  bool next(std::vector<std::string>& fields, int& start_line) {
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) end_line();  // blank lines
    if (pos_ >= text_.size()) return false;
    fields.clear();
    start_line = line_;
    for (;;) {
      fields.push_back(field(fields.size() + 1));
      if (pos_ >= text_.size()) return true;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      end_line();
      return true;
    }
  }

 private:
  bool at_line_end() const { return text_[pos_] == '\n' || text_[pos_] == '\r'; }
  // Consumes "\n", "\r\n" or a lone "\r".
  void end_line() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  std::string field(std::size_t column) {
    std::string value;
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      while (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end()) value += text_[pos_++];
      return value;
    }
    const int opened_on = line_;
    ++pos_;
    for (;;) {
      if (pos_ >= text_.size()) throw DataError(file_, opened_on, "unterminated quoted field (column " + std::to_string(column) + ")");
      char c = text_[pos_++];
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          value += '"';
          ++pos_;
          continue;
        }
        break;
      }
      if (c == '\n') ++line_;
      value += c;
    }
    if (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end())
      throw DataError(file_, line_, "unexpected text after the closing quote of column " + std::to_string(column));
    return value;
  }

  std::string_view text_;
  const std::string& file_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

namespace {

CsvTable parse(std::string_view text, const std::filesystem::path& name) {
  const std::string file = name.string();
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // the byte-order mark spreadsheets write
  CsvParser parser(text, file);
  CsvTable table;
  table.path = name;
  int line = 0;
  if (!parser.next(table.header, line)) throw DataError(file, "empty file (no header row)");
  for (std::size_t i = 0; i < table.header.size(); ++i) {
    if (table.header[i].empty()) throw DataError(file, line, "empty name for column " + std::to_string(i + 1) + " in the header");
    for (std::size_t j = 0; j < i; ++j)
      if (table.header[j] == table.header[i])
        throw DataError(file, line,
                        "column name '" + table.header[i] + "' appears twice in the header (columns " + std::to_string(j + 1) + " and " +
                            std::to_string(i + 1) + ")");
  }
  std::vector<std::string> fields;
  while (parser.next(fields, line)) {
    if (fields.size() != table.header.size())
      throw DataError(file, line,
                      "row has " + std::to_string(fields.size()) + " fields, but the header has " + std::to_string(table.header.size()));
    table.rows.push_back(fields);
    table.row_lines.push_back(line);
  }
  return table;
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::filesystem::path& name) {
  try {
    return parse(text, name);
  } catch (const std::bad_alloc&) {
    throw DataError(name.string(), "not enough memory to read the table");
  }
}

CsvTable read_csv(const std::filesystem::path& path) {
  auto map = MappedFile::open(path);
  try {
    CsvTable table = parse_csv(std::string_view(reinterpret_cast<const char*>(map->data()), map->size()), path);
    map->check_intact();
    return table;
  } catch (const DataError&) {
    map->check_intact();  // text that shrank away reads as NUL bytes: say so, not "ragged row"
    throw;
  }
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header)
    if (h == name) return true;
  return false;
}

std::size_t CsvTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string columns;
  for (const auto& h : header) columns += (columns.empty() ? "'" : ", '") + h + "'";
  throw DataError(path.string(), "no column '" + name + "' (the columns are " + columns + ")");
}

double CsvTable::number(std::size_t row, std::size_t col) const {
  if (row >= rows.size() || col >= header.size()) throw std::out_of_range("CsvTable::number: no such cell");
  const std::string& raw = rows[row][col];
  std::string_view s = raw;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.size() > 1 && s.front() == '+' && s[1] != '-') s.remove_prefix(1);  // from_chars refuses '+'
  double value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || error != std::errc() || end != s.data() + s.size()) {
    std::string why = error == std::errc::result_out_of_range ? "' is out of range for a double" : "' is not a number";
    throw DataError(path.string(), row_lines[row], "column '" + header[col] + "': '" + detail::excerpt(raw) + why);
  }
  return value;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

void write_csv(const std::filesystem::path& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows) {
  auto line_of = [](const std::vector<std::string>& fields) {
    // A lone empty field would be a blank line, which readers skip: quote it.
    if (fields.size() == 1 && fields[0].empty()) return std::string("\"\"\n");
    std::string line;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) line += ',';
      line += csv_field(fields[i]);
    }
    return line + "\n";
  };
  std::string text = line_of(header);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != header.size())
      throw DataError(path.string(), "row " + std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) +
                                         " fields, but the header has " + std::to_string(header.size()));
    text += line_of(rows[r]);
  }
  write_file_atomic(path, text);
}

}  // namespace caulk::io
