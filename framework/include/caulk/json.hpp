// The JSON type of caulk's records (run.json, summaries, unit payloads) and the conversions of
// pipeline parameter values to and from it: one alias and one conversion for the whole code base.
#pragma once
#include <nlohmann/json.hpp>

#include "caulk/value.hpp"

namespace caulk {

// Ordered: run.json and summaries keep the order in which nodes wrote their keys.
using Json = nlohmann::ordered_json;

// What a non-finite float parameter becomes: kept as a number (CBOR unit payloads carry NaN and
// infinities exactly), or the text "nan", "inf", "-inf" (JSON text has no such numbers, and a
// JSON writer would turn them into null: run.json's provenance).
enum class NonFinite { Keep, AsText };

Json value_to_json(const Value& v, NonFinite non_finite = NonFinite::Keep);
// The inverse of value_to_json with NonFinite::Keep (null becomes an unset Value).
Value value_from_json(const Json& j);

}  // namespace caulk
