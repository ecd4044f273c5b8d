#include "caulk/toml_nesting.hpp"

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace caulk {

namespace {

class NestingScanner {
 public:
  NestingScanner(std::string_view text, int limit) : s_(text), limit_(limit) {}

  std::optional<TomlNestingExcess> run() {
    if (s_.starts_with("\xEF\xBB\xBF")) i_ = 3;  // a UTF-8 byte-order mark, which toml++ skips
    while (i_ < s_.size() && !excess_) step();
    return excess_;
  }

 private:
  // The depth of the innermost open container: an array or inline table, else the current [table].
  int container() const { return open_.empty() ? table_depth_ : open_.back(); }

  void reach(int depth, std::size_t at) {
    if (depth > limit_ && !excess_) excess_ = locate(at, depth);
  }

  // A key segment or a value token begins at `at`: after a '.', it continues a dotted run. A
  // value after '=' is the node of its key, so it adds no level (a float's dot adds one).
  void token(std::size_t at) {
    chain_ = after_dot_ ? chain_ + 1 : 1;
    after_dot_ = false;
    line_start_ = false;
    if (in_header_) {
      if (chain_ == 1) header_keys_.clear();
      token_start_ = at;
      return;  // the header's depth is known at its end
    }
    reach(container() + key_depth_ + chain_ - (key_depth_ > 0 ? 1 : 0), at);
  }

  // After a header key's token has been skipped: remember it ("a", 'a' and a are one key; other
  // spellings of a key, such as escapes, only make the count smaller by one level each).
  void header_key_end() {
    if (!in_header_) return;
    std::string_view key = s_.substr(token_start_, i_ - token_start_);
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front()) key = key.substr(1, key.size() - 2);
    header_keys_.push_back(key);
  }

  void reset_statement() {
    key_depth_ = 0;
    chain_ = 0;
    after_dot_ = false;
  }

  // An array or inline table opens: it is the value of the key just read, or else an element of
  // an array (one level below it).
  void open(std::size_t at) {
    const int owner = key_depth_ + chain_;
    const int depth = owner > 0 ? container() + owner : container() + 1;
    open_.push_back(depth);
    reach(depth, at);
    reset_statement();
    line_start_ = false;
  }

  void close() {
    if (!open_.empty()) open_.pop_back();  // an unmatched bracket: toml++ reports it
    reset_statement();
  }

  void begin_header() {
    header_start_ = i_;
    header_array_ = i_ + 1 < s_.size() && s_[i_ + 1] == '[';
    i_ += header_array_ ? 2 : 1;
    in_header_ = true;
    table_depth_ = 0;
    header_keys_.clear();
    reset_statement();
    line_start_ = false;
  }

  // [a.b.c] is 3 levels deep, [[a.b]] 3 (a, the array b, its last table), and each prefix that is
  // an array of tables adds its table: after [[a]], [a.b] is 3 deep (a, a's last table, b). The
  // path names the element it goes through (a#2.b after a second [[a]]), so that an array of
  // tables declared in an earlier element is not counted in a later one.
  void end_header() {
    in_header_ = false;
    int depth = 0;
    std::uint64_t path = kPathSeed;  // a hash of the keys so far: a collision only adds a level
    for (std::size_t k = 0; k < header_keys_.size() && depth <= limit_; ++k) {
      path = extend(path, header_keys_[k]);
      ++depth;
      const bool last = k + 1 == header_keys_.size();
      if (last && header_array_) break;
      if (auto array = arrays_of_tables_.find(path); array != arrays_of_tables_.end()) {
        ++depth;
        path = extend(path, std::string_view(reinterpret_cast<const char*>(&array->second), sizeof array->second));
      }
    }
    if (header_array_) {
      ++depth;
      ++arrays_of_tables_[path];  // one more element
    }
    table_depth_ = depth;
    reach(table_depth_, header_start_);
    reset_statement();
  }

  static constexpr std::uint64_t kPathSeed = 14695981039346656037ull;
  // FNV-1a over the key's bytes and a separator.
  static std::uint64_t extend(std::uint64_t hash, std::string_view key) {
    for (char c : key) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return (hash ^ 0x1f) * 1099511628211ull;
  }

  void step() {
    const char c = s_[i_];
    const bool inside = !open_.empty();
    switch (c) {
      case ' ':
      case '\t':
      case '\r':
        ++i_;
        return;
      case '\n':
        if (in_header_) end_header();
        chain_ = 0;
        after_dot_ = false;
        if (!inside) {
          key_depth_ = 0;
          line_start_ = true;
        }
        ++i_;
        return;
      case '#':
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        return;
      case '"':
      case '\'':
        token(i_);
        skip_string();
        header_key_end();
        return;
      case '.':
        after_dot_ = true;
        ++i_;
        return;
      case '=':
        key_depth_ = chain_;
        chain_ = 0;
        after_dot_ = false;
        line_start_ = false;
        ++i_;
        return;
      case ',':
        reset_statement();
        ++i_;
        return;
      case '[':
        if (!inside && line_start_ && !in_header_) {
          begin_header();
          return;
        }
        open(i_);
        ++i_;
        return;
      case '{':
        open(i_);
        ++i_;
        return;
      case ']':
        if (in_header_) {
          end_header();
          i_ += header_array_ && i_ + 1 < s_.size() && s_[i_ + 1] == ']' ? 2 : 1;
          return;
        }
        close();
        ++i_;
        return;
      case '}':
        close();
        ++i_;
        return;
      default:
        token(i_);
        while (i_ < s_.size() && !delimiter(s_[i_])) ++i_;
        header_key_end();
        return;
    }
  }

  static bool delimiter(char c) {
    switch (c) {
      case ' ':
      case '\t':
      case '\r':
      case '\n':
      case '#':
      case '"':
      case '\'':
      case '.':
      case '=':
      case ',':
      case '[':
      case ']':
      case '{':
      case '}':
        return true;
      default:
        return false;
    }
  }

  // Skips a basic ("...", """...""") or literal ('...', '''...''') string starting at i_.
  void skip_string() {
    const char q = s_[i_];
    const bool basic = q == '"';
    const std::size_t n = s_.size();
    if (i_ + 2 < n && s_[i_ + 1] == q && s_[i_ + 2] == q) {  // multi-line
      std::size_t j = i_ + 3;
      while (j < n) {
        if (basic && s_[j] == '\\') {
          j += 2;
          continue;
        }
        if (s_[j] == q && j + 2 < n && s_[j + 1] == q && s_[j + 2] == q) {
          j += 3;
          for (int extra = 0; extra < 2 && j < n && s_[j] == q; ++extra) ++j;  // """a"""" ends after the 4th quote
          i_ = j;
          return;
        }
        ++j;
      }
      i_ = n;  // unterminated: toml++ reports it
      return;
    }
    std::size_t j = i_ + 1;
    while (j < n && s_[j] != '\n') {
      if (basic && s_[j] == '\\' && j + 1 < n && s_[j + 1] != '\n') {
        j += 2;
        continue;
      }
      if (s_[j] == q) {
        i_ = j + 1;
        return;
      }
      ++j;
    }
    i_ = j;  // unterminated at the end of the line: toml++ reports it
  }

  TomlNestingExcess locate(std::size_t at, int depth) const {
    TomlNestingExcess e;
    e.depth = depth;
    e.line = 1;
    std::size_t line_begin = 0;
    for (std::size_t k = 0; k < at; ++k)
      if (s_[k] == '\n') {
        ++e.line;
        line_begin = k + 1;
      }
    e.column = 1;
    for (std::size_t k = line_begin; k < at; ++k)
      if ((static_cast<unsigned char>(s_[k]) & 0xC0) != 0x80) ++e.column;
    return e;
  }

  std::string_view s_;
  int limit_;
  std::size_t i_ = 0;
  std::vector<int> open_;  // the depth of each open array or inline table
  int table_depth_ = 0;    // the depth of the current [table]
  int key_depth_ = 0;      // segments of the key whose value is being read
  int chain_ = 0;          // segments of the dotted run being read
  bool after_dot_ = false;
  bool line_start_ = true;  // nothing but blanks yet on this line: a '[' starts a header
  bool in_header_ = false, header_array_ = false;
  std::size_t header_start_ = 0, token_start_ = 0;
  std::vector<std::string_view> header_keys_;                          // of the header being read, as written
  std::unordered_map<std::uint64_t, std::uint64_t> arrays_of_tables_;  // path hash -> elements so far
  std::optional<TomlNestingExcess> excess_;
};

}  // namespace

std::optional<TomlNestingExcess> find_toml_nesting_excess(std::string_view text, int limit) { return NestingScanner(text, limit).run(); }

}  // namespace caulk
