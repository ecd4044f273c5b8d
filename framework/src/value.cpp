#include "caulk/value.hpp"

#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace caulk {

namespace {
[[noreturn]] void wrong_kind(const Value& v, const char* want) {
  std::string where = v.where().str();
  throw Error((where.empty() ? "" : where + ": ") + "expected " + want + ", found " + v.kind_name());
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

bool bare_key(const std::string& k) {
  if (k.empty()) return false;
  for (char c : k)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}
}  // namespace

bool Value::as_bool() const {
  if (!is_bool()) wrong_kind(*this, "a boolean");
  return std::get<bool>(data_);
}
std::int64_t Value::as_int() const {
  if (!is_int()) wrong_kind(*this, "an integer");
  return std::get<std::int64_t>(data_);
}
double Value::as_number() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(data_));
  if (!is_float()) wrong_kind(*this, "a number");
  return std::get<double>(data_);
}
const std::string& Value::as_string() const {
  if (!is_string()) wrong_kind(*this, "a string");
  return std::get<std::string>(data_);
}
const Value::Array& Value::as_array() const {
  if (!is_array()) wrong_kind(*this, "an array");
  return std::get<Array>(data_);
}
const Value::Table& Value::as_table() const {
  if (!is_table()) wrong_kind(*this, "a table");
  return std::get<Table>(data_);
}
Value::Array& Value::as_array() {
  if (!is_array()) wrong_kind(*this, "an array");
  return std::get<Array>(data_);
}
Value::Table& Value::as_table() {
  if (!is_table()) wrong_kind(*this, "a table");
  return std::get<Table>(data_);
}

const Value* Value::find(const std::string& key) const {
  if (!is_table()) return nullptr;
  for (const auto& [k, v] : std::get<Table>(data_))
    if (k == key) return &v;
  return nullptr;
}

std::string Value::kind_name() const {
  switch (data_.index()) {
    case 0:
      return "nothing";
    case 1:
      return "a boolean";
    case 2:
      return "an integer";
    case 3:
      return "a float";
    case 4:
      return "a string";
    case 5:
      return "an array";
    default:
      return "a table";
  }
}

std::string Value::to_toml() const {
  switch (data_.index()) {
    case 0:
      return "";
    case 1:
      return std::get<bool>(data_) ? "true" : "false";
    case 2:
      return std::to_string(std::get<std::int64_t>(data_));
    case 3: {
      double d = std::get<double>(data_);
      if (std::isnan(d)) return "nan";
      if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      // Shortest form that reads back to the same double.
      for (int prec = 1; prec <= 17; ++prec) {
        char trial[32];
        std::snprintf(trial, sizeof trial, "%.*g", prec, d);
        if (std::strtod(trial, nullptr) == d) {
          std::snprintf(buf, sizeof buf, "%s", trial);
          break;
        }
      }
      std::string s = buf;
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
    case 4:
      return quote(std::get<std::string>(data_));
    case 5: {
      std::string out = "[";
      const auto& a = std::get<Array>(data_);
      for (std::size_t i = 0; i < a.size(); ++i) out += (i ? ", " : "") + a[i].to_toml();
      return out + "]";
    }
    default: {
      std::string out = "{ ";
      const auto& t = std::get<Table>(data_);
      for (std::size_t i = 0; i < t.size(); ++i)
        out += (i ? ", " : "") + (bare_key(t[i].first) ? t[i].first : quote(t[i].first)) + " = " + t[i].second.to_toml();
      return out + (t.empty() ? "}" : " }");
    }
  }
}

}  // namespace caulk
