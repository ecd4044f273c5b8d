// A recursive-descent parser for the Python literals of a .npy header.
#include "py_literal.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>

#include "caulk/error.hpp"
#include "sizes.hpp"

namespace caulk::io::detail {

namespace {

// A recursive-descent parser for dicts, tuples, lists, strings, integers, True, False and None.
// Depth is bounded so that hostile input cannot exhaust the stack.
class PyLiteralParser {
 public:
  PyLiteralParser(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  PyValue parse() {
    PyValue v = value(0);
    skip_space();
    if (pos_ < text_.size()) fail("unexpected text after the dict");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 16;

  [[noreturn]] void fail(const std::string& what) const {
    std::string where = " at column " + std::to_string(pos_ + 1);
    if (!key_.empty()) where += ", in the value of '" + quote_bytes(key_.data(), std::min<std::size_t>(key_.size(), 40)) + "'";
    std::size_t n = std::min<std::size_t>(20, text_.size() - std::min(pos_, text_.size()));
    std::string near = n ? " near '" + quote_bytes(text_.data() + pos_, n) + "'" : " at the end of the header";
    throw DataError(file_, "malformed header: " + what + where + near);
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }
  bool at(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!at(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  PyValue value(int depth) {
    if (depth > kMaxDepth) fail("nested more than " + std::to_string(kMaxDepth) + " levels deep");
    skip_space();
    if (pos_ >= text_.size()) fail("expected a value");
    std::size_t begin = pos_;
    char c = text_[pos_];
    PyValue v;
    if (c == '{')
      v = dict(depth);
    else if (c == '(')
      v = tuple(depth);
    else if (c == '[')
      v = sequence(depth, '[', ']', PyValue::Kind::List);
    else if (c == '\'' || c == '"')
      v = string();
    else if (c == '-' || c == '+' || (c >= '0' && c <= '9'))
      v = integer();
    else if (std::isalpha(static_cast<unsigned char>(c)))
      v = name();
    else
      fail("expected a value");
    v.begin = begin;
    v.end = pos_;
    return v;
  }

  PyValue dict(int depth) {
    PyValue v;
    v.kind = PyValue::Kind::Dict;
    expect('{');
    while (!at('}')) {
      PyValue key = value(depth + 1);
      if (key.kind != PyValue::Kind::Str) fail("dict keys must be strings");
      expect(':');
      if (depth == 0) key_ = key.text;
      v.items.push_back(value(depth + 1));
      key_.clear();
      v.keys.push_back(std::move(key.text));
      if (!at(',')) break;
      ++pos_;
    }
    expect('}');
    return v;
  }

  // "(x)" is just x in Python; a tuple needs a comma, or nothing at all: "()".
  PyValue tuple(int depth) {
    expect('(');
    if (at(')')) {
      ++pos_;
      PyValue empty;
      empty.kind = PyValue::Kind::Tuple;
      return empty;
    }
    PyValue first = value(depth + 1);
    if (at(')')) {
      ++pos_;
      return first;
    }
    expect(',');
    PyValue v;
    v.kind = PyValue::Kind::Tuple;
    v.items.push_back(std::move(first));
    while (!at(')')) {
      v.items.push_back(value(depth + 1));
      if (!at(',')) break;
      ++pos_;
    }
    expect(')');
    return v;
  }

  PyValue sequence(int depth, char open, char close, PyValue::Kind kind) {
    PyValue v;
    v.kind = kind;
    expect(open);
    while (!at(close)) {
      v.items.push_back(value(depth + 1));
      if (!at(',')) break;
      ++pos_;
    }
    expect(close);
    return v;
  }

  PyValue string() {
    PyValue v;
    v.kind = PyValue::Kind::Str;
    const char quote = text_[pos_++];
    for (;;) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') fail("unterminated string");
      char c = text_[pos_++];
      if (c == quote) return v;
      if (c == '\\' && pos_ < text_.size()) {
        char e = text_[pos_++];
        switch (e) {
          case 'n':
            v.text += '\n';
            break;
          case 't':
            v.text += '\t';
            break;
          case '\\':
          case '\'':
          case '"':
            v.text += e;
            break;
          default:
            v.text += '\\';
            v.text += e;
        }
      } else {
        v.text += c;
      }
    }
  }

  PyValue integer() {
    PyValue v;
    v.kind = PyValue::Kind::Int;
    if (text_[pos_] == '-' || text_[pos_] == '+') v.negative = text_[pos_++] == '-';
    std::size_t digits = 0;
    for (; pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; ++pos_, ++digits) {
      auto d = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v.magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) fail("integer too large");
      v.magnitude = v.magnitude * 10 + d;
    }
    if (digits == 0) fail("expected digits");
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 long
    if (pos_ < text_.size() &&
        (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E' || std::isalpha(static_cast<unsigned char>(text_[pos_]))))
      fail("expected an integer");
    return v;
  }

  PyValue name() {
    std::size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
    std::string_view word = text_.substr(start, pos_ - start);
    PyValue v;
    if (word == "True" || word == "False") {
      v.kind = PyValue::Kind::Bool;
      v.boolean = word == "True";
    } else if (word != "None") {
      pos_ = start;
      fail("unknown name '" + std::string(word) + "'");
    }
    return v;
  }

  std::string_view text_;
  const std::string& file_;
  std::size_t pos_ = 0;
  std::string key_;  // the top-level key whose value is being parsed
};

}  // namespace

PyValue parse_py_literal(std::string_view text, const std::string& file) { return PyLiteralParser(text, file).parse(); }

}  // namespace caulk::io::detail
