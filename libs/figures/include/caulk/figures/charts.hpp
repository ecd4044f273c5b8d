// Vega-Lite specifications of the charts nodes publish as Figures (caulk/artifacts.hpp) for
// report.html. Each is a complete spec (schema, title, description, axis titles with units, data
// inline) that vega-embed renders; series are told apart by point shape and line dash as well as
// colour, so a chart reads in black and white. docs/writing-plugins.md shows a node publishing one.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"

namespace caulk::figures {

inline constexpr const char* kVegaLiteSchema = "https://vega.github.io/schema/vega-lite/v6.json";

struct ChartText {
  std::string title, subtitle;
  std::string description;  // what the chart shows, for screen readers
};

struct Bar {
  std::string label;
  double value = 0;
};
// Horizontal bars, the best first (the largest, or the smallest when lower_is_better).
Json bar_chart(const ChartText& text, const std::string& category_title, const std::string& value_title, std::vector<Bar> bars,
               bool lower_is_better = false);

struct LabelledPoint {
  std::string label;
  double x = 0, y = 0;
};
// Points named by their label. Only the `labelled` points with the largest y carry a text label
// beside them (labels of many close points would print over each other); every point names
// itself in its tooltip.
Json scatter_chart(const ChartText& text, const std::string& x_title, const std::string& y_title, const std::vector<LabelledPoint>& points,
                   std::size_t labelled = 5);

// Several charts side by side (wrapping after `columns`) as one spec with one title; each keeps
// its own title, data and scales.
Json concat_charts(const ChartText& text, const std::vector<Json>& charts, int columns = 3);

// A Figure of `spec`, titled by the spec's title, with a one-line caption.
std::shared_ptr<Figure> make_figure(Json spec, std::string caption);

struct SeriesPoint {
  std::string series;
  double x = 0, y = 0;
};
struct LineChartOptions {
  std::string x_title, y_title, series_title = "series";
  bool x_log = false;
  bool lines = true;  // false: points only
  std::optional<double> y_min, y_max;
  std::vector<SeriesPoint> highlighted;  // drawn as large stars (e.g. the chosen candidate)
  std::string highlighted_label = "chosen";
};
// Lines with a marker at each point; a shape, a dash and a colour per series.
Json line_chart(const ChartText& text, const LineChartOptions& options, const std::vector<SeriesPoint>& points);

struct PowerLawCurve {
  std::string model;
  double a = 0, b = 0, c = 0;
};
// Measured risks (points) and their fitted power laws risk(n) = a n^-b + c (dashed lines, sampled
// on a log grid between the smallest and largest n), n on a log axis; a rule at the target risk.
Json learning_curve_chart(const ChartText& text, const std::string& risk_title, const std::vector<SeriesPoint>& measured,
                          const std::vector<PowerLawCurve>& fits, std::optional<double> target_risk);

struct CovariateWeights {
  std::vector<std::string> models;
  std::vector<std::string> covariate_names;     // one or two
  std::vector<std::vector<double>> covariates;  // rows x (1 or 2)
  std::vector<std::vector<double>> weights;     // rows x models
};
// One covariate: the mean weight of each model over `bins` equal-width bins of it (a line per
// model). Two: a heat map of the mean weight per model over a bins x bins grid of both (one panel
// per model, a sequential scheme whose lightness is monotone, so it reads in greyscale). Empty
// bins are left out. Throws Error when the shapes disagree.
Json covariate_weights_chart(const ChartText& text, const CovariateWeights& data, int bins = 20);

// The binned means both charts draw: for each model, each non-empty cell (lo/hi per covariate)
// and the mean weight of its rows.
struct WeightCell {
  std::size_t model = 0;
  double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;  // y_* unused with one covariate
  double mean_weight = 0;
  std::size_t rows = 0;
};
std::vector<WeightCell> bin_weights(const CovariateWeights& data, int bins);

}  // namespace caulk::figures
