// A parameter value as written in a pipeline file (a TOML value), with where it was written.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "caulk/error.hpp"

namespace caulk {

class Value {
 public:
  using Array = std::vector<Value>;
  using Table = std::vector<std::pair<std::string, Value>>;  // keeps the order of the file

  Value() = default;
  Value(bool b) : data_(b) {}
  Value(int v) : data_(std::int64_t{v}) {}
  Value(std::int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Table t) : data_(std::move(t)) {}

  bool is_none() const { return data_.index() == 0; }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<std::int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_array() const { return std::holds_alternative<Array>(data_); }
  bool is_table() const { return std::holds_alternative<Table>(data_); }

  // Accessors throw caulk::Error naming the expected and the actual kind.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_number() const;  // an int or a float
  const std::string& as_string() const;
  const Array& as_array() const;
  const Table& as_table() const;
  Array& as_array();
  Table& as_table();

  // The entry of a table, or nullptr.
  const Value* find(const std::string& key) const;

  // "boolean", "integer", "float", "string", "array", "table" or "nothing".
  std::string kind_name() const;
  // The value written back as TOML (for messages, DOT labels and run.json).
  std::string to_toml() const;

  const SourceLocation& where() const { return where_; }
  Value& located(SourceLocation where) {
    where_ = std::move(where);
    return *this;
  }

  bool operator==(const Value& other) const { return data_ == other.data_; }

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, Array, Table> data_;
  SourceLocation where_;
};

}  // namespace caulk
