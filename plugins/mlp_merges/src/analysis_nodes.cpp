// analysis.scale_stability and analysis.weight_patterns: how predictions react to the magnitude of
// the parameters (MLPs and TorchScript models), and what an MLP's weights look like (paper 3,
// perspectives 3 and 1).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "caulk/models/inputs.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/units.hpp"
#include "mlp_merges/algorithms/scale_stability.hpp"
#include "mlp_merges/algorithms/weight_patterns.hpp"
#include "caulk/models/hub.hpp"
#include "mlp_merges/src/common.hpp"
#include "mlp_merges/src/interface_stability.hpp"
#include "mlp_merges/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp_merges {

namespace {

std::string check_positive_numbers(const Value& v) {
  if (v.as_array().empty()) return "give at least one scale";
  for (const auto& e : v.as_array()) {
    if (!e.is_number()) return fmt::format("expected numbers, found a {}", e.kind_name());
    if (!std::isfinite(e.as_number())) return "scales must be finite";
  }
  return "";
}

TableCell number_or_empty(double v) { return std::isfinite(v) ? TableCell{v} : TableCell{}; }

// A file name made from a model name (which may hold ':' from a suffix, but never a '/').
std::string file_stem(std::string name) {
  for (char& c : name)
    if (c == '/' || c == '\\') c = '_';
  return name;
}

// One model's prediction stability under parameter scaling, on any rank: the checkpoint (LoRA
// folded, as load_checkpoints loads it), checked against the dataset, run on the split at every
// scale; the points come back as run.json records them.
Json scale_stability_unit(UnitContext& ctx, const Json& d) {
  const auto data = ctx.dataset("data");
  if (d.contains("source")) {  // a TorchScript model, through the model interface
    Json points = Json::array();
    for (const ScalePoint& pt : interface_scale_stability(models::source_from_json(d.at("source")), *data, d.at("split").get<std::string>(),
                                                          d.at("scales").get<std::vector<double>>()))
      points.push_back(Json{{"s", pt.scale}, {"accuracy", pt.accuracy}, {"agreement", pt.agreement}});
    return points;
  }
  const mlp::Samples samples = split_samples(*data, d.at("split").get<std::string>());
  const std::string model = d.at("model").get<std::string>();
  const mlp::Model<float> m = load_checkpoint(d.at("checkpoint").get<std::string>(), true);
  check_fits(m, model, *data, static_cast<long>(samples.X.rows()));
  Json points = Json::array();
  for (const ScalePoint& pt : scale_stability(m, samples, d.at("scales").get<std::vector<double>>(), d.at("layer").get<int>()))
    points.push_back(Json{{"s", pt.scale}, {"accuracy", pt.accuracy}, {"agreement", pt.agreement}});
  return points;
}

class ScaleStability : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("analysis.scale_stability",
               "Prediction stability versus parameter magnitude: scale each model's parameters (all, or one layer) by s over a grid; "
               "accuracy and agreement with the unscaled predictions on a split; a table, also written to OUT/<id>.csv");
    declare_checkpoints(s, "the models (classification; MLPs or TorchScript models), e.g. tuned models and their merges");
    s.input("data", "Dataset", "the classification task, with model inputs for the split");
    s.output("table", "Table", "model, s, accuracy, agreement");
    s.output("accuracy_figure", "Figure", "each model's accuracy against the scale s (drawn in report.html)");
    s.output("agreement_figure", "Figure", "each model's agreement with its unscaled predictions against s (drawn in report.html)");
    s.param(ParamSpec::list("scales", "the grid of factors s").validate(check_positive_numbers));
    s.param(ParamSpec::integer("layer", -1, "scale only layers.{layer}.weight and .bias of an MLP (-1: every parameter)").at_least(-1));
    s.param(ParamSpec::string("split", "test", "the split to predict"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    if (data->kind != TaskKind::Classification)
      throw Error("analysis.scale_stability compares predicted classes: it needs a classification dataset");
    std::vector<double> scales{0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0};
    if (p.has("scales")) {
      scales.clear();
      for (const Value& v : p.get("scales").as_array()) scales.push_back(v.as_number());
    }
    const LoadedModels in = list_checkpoints(ctx, 1, true);
    const int layer = static_cast<int>(p.integer("layer"));
    const bool torchscript = std::any_of(in.refs.begin(), in.refs.end(), [](const CheckpointRef& r) { return !r.module.empty(); });
    if (!torchscript) {
      split_samples(*data, p.string("split"));  // the split and its inputs are checked before any unit starts
    } else {
      models::split_with_inputs(*data, p.string("split"));
      if (layer >= 0)
        throw Error(
            fmt::format("`layer` names an MLP layer (layers.{}.*), which TorchScript models do not have: scale every "
                        "parameter (layer = -1)",
                        layer));
    }
    const Json common{{"split", p.string("split")}, {"scales", scales}, {"layer", layer}};
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < in.names.size(); ++i) {
      Json d{{"model", in.names[i]}, {"checkpoint", in.refs[i].path.string()}};
      if (!in.refs[i].module.empty()) d["source"] = models::source_to_json(models::source_of(in.refs[i]));
      d.update(common);
      descriptions.push_back(std::move(d));
    }
    const std::vector<Json> points = ctx.run_units("model", in.names, descriptions);

    auto table = std::make_shared<Table>();
    table->title = fmt::format("Prediction stability under parameter scaling ({}) on split '{}'",
                               layer < 0 ? std::string("every parameter") : fmt::format("layer {}", layer), p.string("split"));
    table->columns = {"model", "s", "accuracy", "agreement"};
    Json& sum = ctx.summary();
    std::vector<figures::SeriesPoint> accuracy, agreement;
    for (std::size_t i = 0; i < in.names.size(); ++i) {
      for (const Json& pt : points[i]) {
        table->rows.push_back({in.names[i], pt.at("s").get<double>(), pt.at("accuracy").get<double>(), pt.at("agreement").get<double>()});
        accuracy.push_back({in.names[i], pt.at("s").get<double>(), pt.at("accuracy").get<double>()});
        agreement.push_back({in.names[i], pt.at("s").get<double>(), pt.at("agreement").get<double>()});
      }
      sum[in.names[i]] = points[i];
    }
    io::write_file_atomic(ctx.out_dir() / (ctx.id() + ".csv"), table->to_csv());
    ctx.print(table->to_text());
    const std::string scaled = layer < 0 ? std::string("every parameter") : fmt::format("layer {}", layer);
    figures::LineChartOptions o;
    o.x_title = "parameter scale factor s (times, log scale)";
    o.series_title = "model";
    o.x_log = true;
    o.y_min = 0;
    o.y_max = 1;
    o.y_title = "accuracy (fraction correct)";
    ctx.publish("accuracy_figure",
                figures::make_figure(figures::line_chart({fmt::format("Scale stability ({}): accuracy", ctx.id()), scaled + " scaled by s",
                                                          "Accuracy of each model when its parameters are multiplied by s"},
                                                         o, accuracy),
                                     "Accuracy of each model when " + scaled + " is multiplied by s."));
    o.y_title = "agreement with the unscaled predictions (fraction)";
    ctx.publish("agreement_figure",
                figures::make_figure(figures::line_chart({fmt::format("Scale stability ({}): agreement", ctx.id()),
                                                          "the share of predictions unchanged by scaling",
                                                          "Agreement of each model's scaled predictions with its unscaled ones"},
                                                         o, agreement),
                                     "The share of each model's predictions that scaling by s leaves unchanged."));
    ctx.publish("table", std::move(table));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return scale_stability_unit(ctx, payload); }
};

// One model's first-layer image, on any rank: the checkpoint (LoRA folded, as load_checkpoints
// loads it) drawn at the colour scale rank 0 chose (`shared` needs every model's largest |w|) and
// written by this rank to its final path (write_png: a temporary file, then a rename); the file's
// name comes back.
Json first_layer_image_unit(const Json& d) {
  const std::string model = d.at("model").get<std::string>();
  const fs::path file = d.at("file").get<std::string>();
  const double scale = d.at("scale").get<double>();
  const mlp::Model<float> m = load_checkpoint(d.at("checkpoint").get<std::string>(), true);
  const auto& W = m.layers.at(0).W;
  FirstLayerLayout L;
  const RgbImage img = render_first_layer(W, scale, d.at("cell").get<int>(), d.at("max_units").get<int>(), &L);
  write_png(file, img,
            {{"Title", fmt::format("first-layer weights of model {}", model)},
             {"Description",
              fmt::format("{} of {} units x {} inputs, {}; colour t = w / {:.6g} (dark blue -{:.6g}, mid grey 0, light yellow "
                          "+{:.6g}; luma 0.5 + 0.4 t); legend strip at the bottom from -{:.6g} to +{:.6g}",
                          L.units, W.rows(), W.cols(), L.square ? fmt::format("each unit a {}x{} tile", L.side, L.side) : "each unit a row",
                          scale, scale, scale, scale, scale)},
             {"Software", "caulk analysis.weight_patterns"}});
  return Json{{"file", file.filename().string()}};
}

class WeightPatterns : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("analysis.weight_patterns",
               "Weight patterns as images: each model's first-layer weights per unit (PNG, square tiles when the input dimension is a "
               "square), per-layer heat maps of the cosine similarity between models' weights and of their norms (PNG), and the numbers");
    declare_checkpoints(s, "the models to draw");
    s.output("table", "Table", "per layer and model: shape, Frobenius norm, largest |w|, cosine similarity to every model");
    s.output("images", "Figure", "the PNG images this node wrote: first layers, cosine similarity per layer, norms (shown in report.html)");
    s.param(ParamSpec::integer("cell", 6, "first-layer images: pixels per weight").range(1, 64));
    s.param(ParamSpec::integer("heat_cell", 24, "heat maps: pixels per cell").range(1, 256));
    s.param(ParamSpec::integer("max_units", 64, "first-layer images: draw at most this many units").range(1, 100000));
    s.param(ParamSpec::choice("scale", "shared", {"shared", "per_model"},
                              "first-layer colour scale: the largest |w| over every model (comparable images) or per model"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const LoadedModels in = load_checkpoints(ctx, true);
    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    const std::size_t K = in.models.size();
    int layers = 0;
    for (const auto& m : in.models) layers = std::max(layers, m.num_layers());

    // First-layer images.
    std::vector<double> vmax(K);
    for (std::size_t i = 0; i < K; ++i) vmax[i] = double(in.models[i].layers[0].W.cwiseAbs().maxCoeff());
    const double shared = *std::max_element(vmax.begin(), vmax.end());
    const int cell = static_cast<int>(p.integer("cell")), max_units = static_cast<int>(p.integer("max_units"));
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < K; ++i)
      descriptions.push_back(Json{{"model", in.names[i]},
                                  {"checkpoint", in.refs[i].path.string()},
                                  {"file", (dir / (file_stem(in.names[i]) + ".first_layer.png")).string()},
                                  {"scale", p.string("scale") == "shared" ? shared : vmax[i]},
                                  {"cell", cell},
                                  {"max_units", max_units}});
    const std::vector<Json> drawn = ctx.run_units("model", in.names, descriptions);

    // Per-layer numbers and heat maps.
    auto table = std::make_shared<Table>();
    table->title = "Weights per layer: norms and cosine similarity between models";
    table->columns = {"layer", "model", "rows", "cols", "frobenius_norm", "max_abs"};
    for (const auto& n : in.names) table->columns.push_back("cos:" + n);
    mlp::Mat<double> norms = mlp::Mat<double>::Constant(static_cast<Eigen::Index>(K), layers, std::nan(""));
    Json layer_json = Json::array();
    const int heat_cell = static_cast<int>(p.integer("heat_cell"));
    for (int l = 0; l < layers; ++l) {
      std::vector<const mlp::Mat<float>*> tensors;
      static const mlp::Mat<float> kNone;
      for (const auto& m : in.models) tensors.push_back(l < m.num_layers() ? &m.layers[l].W : &kNone);
      const mlp::Mat<double> cosine = cosine_similarity(tensors);
      for (std::size_t i = 0; i < K; ++i) {
        if (l >= in.models[i].num_layers()) continue;
        const auto& W = in.models[i].layers[l].W;
        norms(static_cast<Eigen::Index>(i), l) = W.cast<double>().norm();
        std::vector<TableCell> row{static_cast<long long>(l),
                                   in.names[i],
                                   static_cast<long long>(W.rows()),
                                   static_cast<long long>(W.cols()),
                                   norms(static_cast<Eigen::Index>(i), l),
                                   double(W.cwiseAbs().maxCoeff())};
        for (std::size_t j = 0; j < K; ++j)
          row.push_back(number_or_empty(cosine(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j))));
        table->rows.push_back(std::move(row));
      }
      const std::string file = fmt::format("cosine.layers.{}.png", l);
      write_png(
          dir / file, render_heat_map(cosine, heat_cell, std::max(8, heat_cell / 2)),
          {{"Title", fmt::format("cosine similarity of layers.{}.weight between models", l)},
           {"Description", fmt::format("{0}x{0} cells, row i column j = cos(model i, model j) in model order ({1}); colour t = cosine "
                                       "(dark blue -1, mid grey 0, light yellow +1); black: shapes differ; legend strip -1..+1",
                                       K, fmt::join(in.names, ", "))},
           {"Software", "caulk analysis.weight_patterns"}});
      layer_json.push_back(file);
    }
    // Norms: each column (layer) scaled to its largest norm, t = 2 norm / max - 1.
    mlp::Mat<double> t = norms;
    for (int l = 0; l < layers; ++l) {
      double mx = 0;
      for (Eigen::Index i = 0; i < t.rows(); ++i)
        if (std::isfinite(norms(i, l))) mx = std::max(mx, norms(i, l));
      for (Eigen::Index i = 0; i < t.rows(); ++i) t(i, l) = std::isfinite(norms(i, l)) && mx > 0 ? 2 * norms(i, l) / mx - 1 : std::nan("");
    }
    write_png(dir / "norms.png", render_heat_map(t, heat_cell, std::max(8, heat_cell / 2)),
              {{"Title", "Frobenius norms of layers.l.weight"},
               {"Description", fmt::format("rows: models ({}); columns: layers 0..{}; each column scaled to its largest norm: colour t = "
                                           "2 norm / max - 1 (dark blue 0, light yellow the layer's largest); black: no such layer",
                                           fmt::join(in.names, ", "), layers - 1)},
               {"Software", "caulk analysis.weight_patterns"}});
    io::write_file_atomic(dir / "weights.csv", table->to_csv());

    Json& sum = ctx.summary();
    Json images = Json::object();
    for (std::size_t i = 0; i < K; ++i) images[in.names[i]] = drawn[i].at("file");
    sum["first_layer_images"] = images;
    sum["cosine_images"] = layer_json;
    sum["first_layer_scale"] = p.string("scale") == "shared" ? Json(shared) : Json(vmax);
    ctx.print(table->to_text());
    auto pictures = std::make_shared<Figure>();
    pictures->title = "Weight patterns (" + ctx.id() + ")";
    pictures->caption = "First-layer weights of each model, cosine similarity between models per layer, and layer norms.";
    for (std::size_t i = 0; i < K; ++i)
      pictures->images.push_back(fs::path(ctx.id()) / fs::path(drawn[i].at("file").get<std::string>()).filename());
    for (const auto& file : layer_json) pictures->images.push_back(fs::path(ctx.id()) / file.get<std::string>());
    pictures->images.push_back(fs::path(ctx.id()) / "norms.png");
    ctx.publish("images", std::move(pictures));
    ctx.publish("table", std::move(table));
  }
  static Json run_unit(UnitContext&, const Json& payload) { return first_layer_image_unit(payload); }
};

}  // namespace

void register_analyses(PluginRegistrar& r) {
  r.add_node<ScaleStability>();
  r.add_node<WeightPatterns>();
}

}  // namespace caulk::mlp_merges
