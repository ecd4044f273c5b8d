#include "caulk/json.hpp"

#include <cmath>

namespace caulk {

Json value_to_json(const Value& v, NonFinite non_finite) {
  if (v.is_bool()) return v.as_bool();
  if (v.is_int()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_number();
    if (non_finite == NonFinite::AsText && !std::isfinite(d)) return std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf";
    return d;
  }
  if (v.is_string()) return v.as_string();
  if (v.is_array()) {
    Json a = Json::array();
    for (const auto& e : v.as_array()) a.push_back(value_to_json(e, non_finite));
    return a;
  }
  if (v.is_table()) {
    Json t = Json::object();
    for (const auto& [k, e] : v.as_table()) t[k] = value_to_json(e, non_finite);
    return t;
  }
  return nullptr;
}

Value value_from_json(const Json& j) {
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number_integer()) return Value(j.get<std::int64_t>());
  if (j.is_number_float()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_array()) {
    Value::Array a;
    for (const auto& e : j) a.push_back(value_from_json(e));
    return Value(std::move(a));
  }
  if (j.is_object()) {
    Value::Table t;
    for (const auto& [k, e] : j.items()) t.emplace_back(k, value_from_json(e));
    return Value(std::move(t));
  }
  return Value();
}

}  // namespace caulk
