#include "caulk/figures/charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "caulk/error.hpp"

namespace caulk::figures {

namespace {

Json base_spec(const ChartText& text) {
  Json spec = Json::object();
  spec["$schema"] = kVegaLiteSchema;
  Json title = Json::object();
  title["text"] = text.title;
  if (!text.subtitle.empty()) title["subtitle"] = text.subtitle;
  spec["title"] = title;
  spec["description"] = text.description.empty() ? text.title : text.description;
  return spec;
}

// Numbers that are not finite are left out of a chart (Vega-Lite would drop them anyway, with a
// warning).
bool finite(double v) { return std::isfinite(v); }

Json axis(const std::string& field, const std::string& title, const char* type = "quantitative") {
  return Json{{"field", field}, {"type", type}, {"title", title}};
}

Json tooltip(const std::string& field, const std::string& title, bool number) {
  Json t{{"field", field}, {"type", number ? "quantitative" : "nominal"}, {"title", title}};
  if (number) t["format"] = ".4~g";
  return t;
}

// A log axis labels the data's own values when there are few (Vega's log ticks crowd: 0.3 0.4 0.5).
void log_axis_ticks(Json& x, const std::vector<double>& values) {
  std::vector<double> v(values);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  if (!v.empty() && v.size() <= 12) x["axis"] = Json{{"values", v}};
}

Json series_channel(const std::string& title) { return Json{{"field", "series"}, {"type", "nominal"}, {"title", title}}; }

}  // namespace

Json bar_chart(const ChartText& text, const std::string& category_title, const std::string& value_title, std::vector<Bar> bars,
               bool lower_is_better) {
  bars.erase(std::remove_if(bars.begin(), bars.end(), [](const Bar& b) { return !finite(b.value); }), bars.end());
  std::stable_sort(bars.begin(), bars.end(),
                   [&](const Bar& a, const Bar& b) { return lower_is_better ? a.value < b.value : a.value > b.value; });
  Json values = Json::array();
  for (const auto& b : bars) values.push_back(Json{{"label", b.label}, {"value", b.value}});
  Json spec = base_spec(text);
  spec["width"] = 360;
  spec["height"] = Json{{"step", 20}};
  spec["data"] = Json{{"values", values}};
  spec["mark"] = Json{{"type", "bar"}, {"color", "#4c78a8"}, {"stroke", "black"}, {"strokeWidth", 0.5}};
  Json y = axis("label", category_title, "nominal");
  y["sort"] = nullptr;  // the data's order: best first
  spec["encoding"] = Json{{"y", y},
                          {"x", axis("value", value_title)},
                          {"tooltip", Json::array({tooltip("label", category_title, false), tooltip("value", value_title, true)})}};
  return spec;
}

Json scatter_chart(const ChartText& text, const std::string& x_title, const std::string& y_title, const std::vector<LabelledPoint>& points,
                   std::size_t labelled) {
  std::vector<const LabelledPoint*> drawn;
  for (const auto& p : points)
    if (finite(p.x) && finite(p.y)) drawn.push_back(&p);
  // The points that get a text label: the `labelled` largest y (the first of equal ones).
  std::vector<std::size_t> order(drawn.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return drawn[a]->y > drawn[b]->y; });
  std::vector<bool> with_label(drawn.size(), false);
  for (std::size_t k = 0; k < std::min(labelled, order.size()); ++k) with_label[order[k]] = true;
  Json values = Json::array(), label_values = Json::array();
  for (std::size_t i = 0; i < drawn.size(); ++i) {
    values.push_back(Json{{"label", drawn[i]->label}, {"x", drawn[i]->x}, {"y", drawn[i]->y}});
    if (with_label[i]) label_values.push_back(values.back());
  }
  Json x = axis("x", x_title), y = axis("y", y_title);
  x["scale"] = Json{{"zero", false}};
  y["scale"] = Json{{"zero", false}};
  Json spec = base_spec(text);
  spec["width"] = 260;
  spec["height"] = 200;
  Json points_layer{
      {"data", {{"values", values}}},
      {"mark", {{"type", "point"}, {"filled", true}, {"size", 60}, {"color", "black"}}},
      {"encoding",
       {{"x", x},
        {"y", y},
        {"tooltip", Json::array({tooltip("label", "model", false), tooltip("x", x_title, true), tooltip("y", y_title, true)})}}}};
  Json layers = Json::array({points_layer});
  if (!label_values.empty())
    layers.push_back(Json{{"data", {{"values", label_values}}},
                          {"mark", {{"type", "text"}, {"align", "left"}, {"dx", 6}, {"fontSize", 10}}},
                          {"encoding", {{"x", x}, {"y", y}, {"text", {{"field", "label"}, {"type", "nominal"}}}}}});
  spec["layer"] = layers;
  return spec;
}

Json concat_charts(const ChartText& text, const std::vector<Json>& charts, int columns) {
  Json spec = base_spec(text);
  Json parts = Json::array();
  for (Json chart : charts) {
    chart.erase("$schema");
    parts.push_back(std::move(chart));
  }
  spec["concat"] = std::move(parts);
  spec["columns"] = columns;
  return spec;
}

std::shared_ptr<Figure> make_figure(Json spec, std::string caption) {
  auto figure = std::make_shared<Figure>();
  if (spec.contains("title") && spec["title"].is_object() && spec["title"].contains("text") && spec["title"]["text"].is_string())
    figure->title = spec["title"]["text"].get<std::string>();
  figure->caption = std::move(caption);
  figure->spec = std::move(spec);
  return figure;
}

Json line_chart(const ChartText& text, const LineChartOptions& o, const std::vector<SeriesPoint>& points) {
  Json values = Json::array();
  for (const auto& p : points)
    if (finite(p.x) && finite(p.y) && (!o.x_log || p.x > 0)) values.push_back(Json{{"series", p.series}, {"x", p.x}, {"y", p.y}});
  Json x = axis("x", o.x_title), y = axis("y", o.y_title);
  x["scale"] = o.x_log ? Json{{"type", "log"}} : Json{{"zero", false}};
  if (o.x_log) {
    std::vector<double> xs;
    for (const auto& v : values) xs.push_back(v["x"].get<double>());
    log_axis_ticks(x, xs);
    if (!xs.empty()) {
      const auto [lo, hi] = std::minmax_element(xs.begin(), xs.end());
      x["scale"] = Json{{"type", "log"}, {"nice", false}, {"domain", Json::array({*lo / 1.2, *hi * 1.2})}};
    }
  }
  Json yscale{{"zero", false}};
  if (o.y_min && o.y_max) yscale["domain"] = Json::array({*o.y_min, *o.y_max});
  y["scale"] = yscale;
  Json spec = base_spec(text);
  spec["width"] = 360;
  spec["height"] = 220;
  Json layers = Json::array();
  Json tips = Json::array({tooltip("series", o.series_title, false), tooltip("x", o.x_title, true), tooltip("y", o.y_title, true)});
  if (o.lines)
    layers.push_back(Json{
        {"data", {{"values", values}}},
        {"mark", {{"type", "line"}, {"strokeWidth", 1.5}}},
        {"encoding", {{"x", x}, {"y", y}, {"color", series_channel(o.series_title)}, {"strokeDash", series_channel(o.series_title)}}}});
  layers.push_back(Json{
      {"data", {{"values", values}}},
      {"mark", {{"type", "point"}, {"filled", true}, {"size", 45}}},
      {"encoding",
       {{"x", x}, {"y", y}, {"color", series_channel(o.series_title)}, {"shape", series_channel(o.series_title)}, {"tooltip", tips}}}});
  if (!o.highlighted.empty()) {
    Json marked = Json::array();
    for (const auto& p : o.highlighted)
      if (finite(p.x) && finite(p.y)) marked.push_back(Json{{"series", p.series}, {"x", p.x}, {"y", p.y}, {"note", o.highlighted_label}});
    layers.push_back(
        Json{{"data", {{"values", marked}}},
             {"mark", {{"type", "point"}, {"shape", "diamond"}, {"size", 260}, {"filled", false}, {"color", "black"}, {"strokeWidth", 2}}},
             {"encoding",
              {{"x", x},
               {"y", y},
               {"tooltip", Json::array({tooltip("note", "", false), tooltip("x", o.x_title, true), tooltip("y", o.y_title, true)})}}}});
  }
  spec["layer"] = layers;
  return spec;
}

Json learning_curve_chart(const ChartText& text, const std::string& risk_title, const std::vector<SeriesPoint>& measured,
                          const std::vector<PowerLawCurve>& fits, std::optional<double> target_risk) {
  double n_lo = std::numeric_limits<double>::infinity(), n_hi = 0;
  Json points = Json::array();
  for (const auto& p : measured) {
    if (!finite(p.x) || !finite(p.y) || p.x <= 0) continue;
    n_lo = std::min(n_lo, p.x);
    n_hi = std::max(n_hi, p.x);
    points.push_back(Json{{"series", p.series}, {"x", p.x}, {"y", p.y}});
  }
  Json fitted = Json::array();
  constexpr int kSamples = 48;
  if (n_hi > 0)
    for (const auto& f : fits)
      for (int k = 0; k < kSamples; ++k) {
        const double n = n_lo * std::pow(n_hi / n_lo, double(k) / (kSamples - 1));
        const double risk = f.a * std::pow(n, -f.b) + f.c;
        if (finite(risk)) fitted.push_back(Json{{"series", f.model}, {"x", n}, {"y", risk}});
      }
  const std::string n_title = "training samples n (count, log scale)";
  Json x = axis("x", n_title), y = axis("y", risk_title);
  // Vega's "nice" log domain would run to the next power of ten: the data's range, padded.
  x["scale"] = n_hi > 0 ? Json{{"type", "log"}, {"nice", false}, {"domain", Json::array({n_lo / 1.2, n_hi * 1.2})}} : Json{{"type", "log"}};
  std::vector<double> sizes;
  for (const auto& v : points) sizes.push_back(v["x"].get<double>());
  log_axis_ticks(x, sizes);
  y["scale"] = Json{{"zero", false}};
  Json spec = base_spec(text);
  spec["width"] = 420;
  spec["height"] = 260;
  Json layers = Json::array();
  layers.push_back(
      Json{{"data", {{"values", points}}},
           {"mark", {{"type", "point"}, {"filled", true}, {"size", 40}, {"opacity", 0.8}}},
           {"encoding",
            {{"x", x},
             {"y", y},
             {"color", series_channel("model")},
             {"shape", series_channel("model")},
             {"tooltip", Json::array({tooltip("series", "model", false), tooltip("x", "n", true), tooltip("y", risk_title, true)})}}}});
  layers.push_back(Json{{"data", {{"values", fitted}}},
                        {"mark", {{"type", "line"}, {"strokeWidth", 1.5}}},
                        {"encoding", {{"x", x}, {"y", y}, {"color", series_channel("model")}, {"strokeDash", series_channel("model")}}}});
  if (target_risk && finite(*target_risk)) {
    Json rule{{"data", {{"values", Json::array({Json{{"y", *target_risk}, {"label", "target risk"}}})}}},
              {"mark", {{"type", "rule"}, {"color", "#555"}, {"strokeDash", Json::array({2, 3})}}},
              {"encoding", {{"y", y}, {"tooltip", Json::array({tooltip("label", "", false), tooltip("y", risk_title, true)})}}}};
    layers.push_back(rule);
  }
  spec["layer"] = layers;
  return spec;
}

std::vector<WeightCell> bin_weights(const CovariateWeights& d, int bins) {
  const std::size_t q = d.covariate_names.size();
  if (q < 1 || q > 2) throw Error(fmt::format("weights are drawn over one or two covariates, not {}", q));
  if (d.covariates.size() != d.weights.size())
    throw Error(fmt::format("{} rows of covariates but {} rows of weights", d.covariates.size(), d.weights.size()));
  if (bins < 1) throw Error("the number of bins must be positive");
  const std::size_t K = d.models.size();
  double lo[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  double hi[2] = {-lo[0], -lo[1]};
  for (std::size_t i = 0; i < d.covariates.size(); ++i) {
    if (d.covariates[i].size() != q || d.weights[i].size() != K)
      throw Error(fmt::format("row {} has {} covariates and {} weights where {} and {} were expected", i + 1, d.covariates[i].size(),
                              d.weights[i].size(), q, K));
    for (std::size_t c = 0; c < q; ++c)
      if (finite(d.covariates[i][c])) {
        lo[c] = std::min(lo[c], d.covariates[i][c]);
        hi[c] = std::max(hi[c], d.covariates[i][c]);
      }
  }
  const std::size_t B = static_cast<std::size_t>(bins), cells = q == 1 ? B : B * B;
  auto bin_of = [&](double v, std::size_t c) {
    if (!(hi[c] > lo[c])) return std::size_t{0};
    return std::min(B - 1, static_cast<std::size_t>(std::floor((v - lo[c]) / (hi[c] - lo[c]) * double(B))));
  };
  std::vector<std::vector<double>> sum(K, std::vector<double>(cells, 0.0));
  std::vector<std::size_t> count(cells, 0);
  std::vector<std::vector<std::size_t>> finite_count(K, std::vector<std::size_t>(cells, 0));
  for (std::size_t i = 0; i < d.covariates.size(); ++i) {
    bool ok = true;
    for (std::size_t c = 0; c < q; ++c) ok = ok && finite(d.covariates[i][c]);
    if (!ok) continue;
    const std::size_t cell = q == 1 ? bin_of(d.covariates[i][0], 0) : bin_of(d.covariates[i][0], 0) * B + bin_of(d.covariates[i][1], 1);
    ++count[cell];
    for (std::size_t k = 0; k < K; ++k)
      if (finite(d.weights[i][k])) {
        sum[k][cell] += d.weights[i][k];
        ++finite_count[k][cell];
      }
  }
  auto edge = [&](std::size_t c, std::size_t b) { return hi[c] > lo[c] ? lo[c] + (hi[c] - lo[c]) * double(b) / double(B) : lo[c]; };
  std::vector<WeightCell> out;
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t cell = 0; cell < cells; ++cell) {
      if (finite_count[k][cell] == 0) continue;
      WeightCell w;
      w.model = k;
      const std::size_t bx = q == 1 ? cell : cell / B, by = q == 1 ? 0 : cell % B;
      w.x_lo = edge(0, bx);
      w.x_hi = hi[0] > lo[0] ? edge(0, bx + 1) : lo[0];
      if (q == 2) {
        w.y_lo = edge(1, by);
        w.y_hi = hi[1] > lo[1] ? edge(1, by + 1) : lo[1];
      }
      w.mean_weight = sum[k][cell] / double(finite_count[k][cell]);
      w.rows = count[cell];
      out.push_back(w);
    }
  return out;
}

Json covariate_weights_chart(const ChartText& text, const CovariateWeights& d, int bins) {
  const std::vector<WeightCell> cells = bin_weights(d, bins);
  const std::string weight_title = "mean weight (fraction of the combination)";
  if (d.covariate_names.size() == 1) {
    std::vector<SeriesPoint> points;
    for (const auto& c : cells) points.push_back({d.models[c.model], (c.x_lo + c.x_hi) / 2, c.mean_weight});
    LineChartOptions o;
    o.x_title = d.covariate_names[0] + " (covariate value, bin centre)";
    o.y_title = weight_title;
    o.series_title = "model";
    bool unit = std::all_of(cells.begin(), cells.end(), [](const WeightCell& c) { return c.mean_weight >= 0 && c.mean_weight <= 1; });
    if (unit) {
      o.y_min = 0;
      o.y_max = 1;
    }
    return line_chart(text, o, points);
  }
  Json values = Json::array();
  for (const auto& c : cells)
    values.push_back(Json{{"model", d.models[c.model]},
                          {"x0", c.x_lo},
                          {"x1", c.x_hi},
                          {"y0", c.y_lo},
                          {"y1", c.y_hi},
                          {"weight", c.mean_weight},
                          {"rows", c.rows}});
  Json spec = base_spec(text);
  spec["data"] = Json{{"values", values}};
  spec["facet"] = Json{{"field", "model"}, {"type", "nominal"}, {"title", "model"}, {"sort", d.models}};
  spec["columns"] = 3;
  const bool unit = std::all_of(cells.begin(), cells.end(), [](const WeightCell& c) { return c.mean_weight >= 0 && c.mean_weight <= 1; });
  Json color_scale{{"scheme", "viridis"}};
  if (unit) color_scale["domain"] = Json::array({0, 1});
  Json color{{"field", "weight"}, {"type", "quantitative"}, {"title", "mean weight"}, {"scale", color_scale}};
  spec["spec"] = Json{{"width", 200},
                      {"height", 200},
                      {"mark", {{"type", "rect"}}},
                      {"encoding",
                       {{"x", {{"field", "x0"}, {"type", "quantitative"}, {"title", d.covariate_names[0] + " (covariate value)"}}},
                        {"x2", {{"field", "x1"}}},
                        {"y", {{"field", "y0"}, {"type", "quantitative"}, {"title", d.covariate_names[1] + " (covariate value)"}}},
                        {"y2", {{"field", "y1"}}},
                        {"color", color},
                        {"tooltip", Json::array({tooltip("model", "model", false), tooltip("weight", weight_title, true),
                                                 tooltip("rows", "rows in the cell", true)})}}}};
  return spec;
}

}  // namespace caulk::figures
