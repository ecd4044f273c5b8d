// Building run.json records by hand, and checking the charts of report.html and of
// caulk/figures/ as Vega-Lite.
#pragma once
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/figures/charts.hpp"

namespace caulk::report::testing {

using caulk::figures::kVegaLiteSchema;

inline Json table(const std::string& title, const std::vector<std::string>& columns, const Json& rows) {
  return Json{{"title", title}, {"columns", columns}, {"rows", rows}};
}

inline Json node(const std::string& type, const std::string& status = "ok", Json summary = Json::object(), Json tables = Json(),
                 Json figures = Json()) {
  Json j{{"type", type}, {"status", status}, {"seconds", 0.25}};
  j["summary"] = std::move(summary);
  if (!tables.is_null()) j["tables"] = std::move(tables);
  if (!figures.is_null()) j["figures"] = std::move(figures);
  return j;
}

// A figure as run.json keeps it.
inline Json figure(const std::string& caption, Json spec, Json images = Json()) {
  Json f{{"title", spec.is_object() && spec.contains("title") ? spec["title"].value("text", "") : ""}, {"caption", caption}};
  if (!spec.is_null()) f["spec"] = std::move(spec);
  if (!images.is_null()) f["images"] = std::move(images);
  return f;
}

// Every <script type="application/json" id="spec-N"> of the page, parsed, in order.
inline std::vector<Json> embedded_specs(const std::string& html) {
  std::vector<Json> out;
  const std::string open = "<script type=\"application/json\" id=\"spec-";
  for (std::size_t at = html.find(open); at != std::string::npos; at = html.find(open, at + 1)) {
    const std::size_t begin = html.find('>', at) + 1, end = html.find("</script>", begin);
    out.push_back(Json::parse(html.substr(begin, end - begin)));
  }
  return out;
}

// A Vega-Lite chart as the report promises it: the v6 schema, a title and a description, a mark
// (or layers, or a faceted spec), inline data that is not empty, every encoded field present in
// that data, every positional axis titled, and series told apart by shape or dash, not colour only.
inline void check_field(const Json& channel, const Json& data, const std::string& where) {
  if (!channel.is_object() || !channel.contains("field")) return;
  const std::string field = channel["field"].get<std::string>();
  ASSERT_FALSE(data.is_null()) << where << ": no data for field " << field;
  bool found = false;
  for (const auto& row : data) found = found || row.contains(field);
  EXPECT_TRUE(found) << where << ": field '" << field << "' is in no data row";
  if (channel.contains("type")) {
    static const std::set<std::string> kTypes = {"quantitative", "nominal", "ordinal", "temporal"};
    EXPECT_TRUE(kTypes.count(channel["type"].get<std::string>())) << where << ": type " << channel["type"];
  }
}

inline void check_view(const Json& view, Json data, const std::string& where) {
  if (view.contains("data")) {
    ASSERT_TRUE(view["data"].contains("values")) << where;
    data = view["data"]["values"];
    ASSERT_TRUE(data.is_array()) << where;
    EXPECT_FALSE(data.empty()) << where << ": empty data";
  }
  if (view.contains("layer")) {
    ASSERT_TRUE(view["layer"].is_array());
    for (std::size_t i = 0; i < view["layer"].size(); ++i) check_view(view["layer"][i], data, where + ".layer[" + std::to_string(i) + "]");
    return;
  }
  if (view.contains("concat")) {
    ASSERT_TRUE(view["concat"].is_array());
    for (std::size_t i = 0; i < view["concat"].size(); ++i)
      check_view(view["concat"][i], data, where + ".concat[" + std::to_string(i) + "]");
    return;
  }
  if (view.contains("facet")) {
    check_field(view["facet"], data, where + ".facet");
    ASSERT_TRUE(view.contains("spec")) << where;
    check_view(view["spec"], data, where + ".spec");
    return;
  }
  ASSERT_TRUE(view.contains("mark")) << where << ": no mark";
  ASSERT_TRUE(view.contains("encoding")) << where << ": no encoding";
  const Json& enc = view["encoding"];
  for (const char* axis : {"x", "y"}) {
    if (!enc.contains(axis)) continue;
    check_field(enc[axis], data, where + "." + axis);
    ASSERT_TRUE(enc[axis].contains("title")) << where << ": axis " << axis << " has no title";
    EXPECT_FALSE(enc[axis]["title"].get<std::string>().empty()) << where;
  }
  for (const auto& [name, channel] : enc.items())
    if (channel.is_object()) check_field(channel, data, where + "." + name);
  if (enc.contains("color") && enc["color"].value("type", "") == "nominal") {
    EXPECT_TRUE(enc.contains("shape") || enc.contains("strokeDash")) << where << ": series told apart by colour only";
  }
}

inline void expect_valid_vega_lite(const Json& spec) {
  ASSERT_TRUE(spec.is_object());
  EXPECT_EQ(spec.value("$schema", ""), kVegaLiteSchema);
  ASSERT_TRUE(spec.contains("title") && spec["title"].is_object());
  EXPECT_FALSE(spec["title"].value("text", "").empty());
  EXPECT_FALSE(spec.value("description", "").empty());
  check_view(spec, Json(), spec["title"].value("text", "chart"));
}

}  // namespace caulk::report::testing
