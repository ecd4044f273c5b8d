#include "averagers/src/common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "averagers/src/predictions_manifest.hpp"

namespace caulk::averagers {

std::vector<std::string> Candidates::common_splits() const {
  std::vector<std::string> out;
  if (models.empty()) return out;
  for (const auto& [split, m] : models.front()->splits) {
    bool everywhere = true;
    for (const auto* other : models) everywhere = everywhere && other->splits.count(split);
    if (everywhere) out.push_back(split);
  }
  return out;
}

const Matrix& Candidates::on(std::size_t k, const std::string& split) const {
  auto it = models[k]->splits.find(split);
  if (it == models[k]->splits.end()) {
    std::string have;
    for (const auto& [s, m] : models[k]->splits) have += (have.empty() ? "" : ", ") + s;
    throw Error(fmt::format("model '{}' (from '{}') has no predictions on split '{}' (it has: {})", names[k], producers[k], split,
                            have.empty() ? "none" : have));
  }
  return it->second;
}

std::string Candidates::describe(std::size_t k, const std::string& split) const {
  if (files[k])
    if (auto it = files[k]->find(split); it != files[k]->end())
      return fmt::format("model '{}' (split '{}' of {})", names[k], split, it->second.string());
  return fmt::format("model '{}' (split '{}' of node '{}')", names[k], split, producers[k]);
}

Candidates gather_candidates(const std::vector<std::shared_ptr<const Predictions>>& inputs, const Dataset* data) {
  Candidates c;
  std::map<std::string, std::string> producer_of;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Predictions& p = *inputs[i];
    if (i == 0) c.kind = p.kind;
    if (p.kind != c.kind)
      throw Error(fmt::format("'{}' gives {} predictions but '{}' gives {}: combine one kind at a time", inputs.front()->producer_node,
                              task_kind_name(c.kind), p.producer_node, task_kind_name(p.kind)));
    for (const auto& m : p.models) {
      auto [it, fresh] = producer_of.emplace(m.model, p.producer_node);
      if (!fresh)
        throw Error(fmt::format("model '{}' is given by both '{}' and '{}'; every candidate needs its own name", m.model, it->second,
                                p.producer_node));
      c.names.push_back(m.model);
      c.producers.push_back(p.producer_node);
      c.models.push_back(&m);
      const std::map<std::string, std::filesystem::path>* files = nullptr;
      if (const auto* loaded = dynamic_cast<const LoadedPredictions*>(&p))
        if (auto it = loaded->files.find(m.model); it != loaded->files.end()) files = &it->second;
      c.files.push_back(files);
    }
  }
  if (c.models.empty()) throw Error("the predictions hold no models to combine");
  if (data && data->kind != c.kind)
    throw Error(fmt::format("the predictions are {} but the dataset of '{}' is a {} task", task_kind_name(c.kind), data->producer_node,
                            task_kind_name(data->kind)));
  return c;
}

avg::Stack stack_on(const Candidates& c, const Dataset& data, const std::string& split, const std::string& prediction_split) {
  const std::string from = prediction_split.empty() ? split : prediction_split;
  const DatasetSplit& d = data.split(split);
  std::vector<const Matrix*> preds;
  for (std::size_t k = 0; k < c.models.size(); ++k) preds.push_back(&c.on(k, from));
  const std::string what = from == split ? fmt::format("split '{}'", split) : fmt::format("split '{}' (labels of split '{}')", from, split);
  if (c.kind == TaskKind::Classification) return avg::make_stack(c.kind, c.names, preds, nullptr, &d.classes, what);
  return avg::make_stack(c.kind, c.names, preds, &d.targets, nullptr, what);
}

void check_magnitudes(const NodeContext& ctx, const Candidates& c, const Dataset& data, const std::string& split, avg::Stack& s,
                      bool scale_free, const std::string& scale_dependence, const std::string& prediction_split) {
  const avg::Magnitudes m = avg::magnitudes(s);
  if (m.range == avg::Magnitudes::Range::Fits) return;
  const std::string from = prediction_split.empty() ? split : prediction_split;
  auto source = [&](int index) {
    if (index >= 0) return c.describe(static_cast<std::size_t>(index), from);
    const std::filesystem::path& labels = data.split(split).labels_file;
    return fmt::format("the targets (split '{}' of {})", split, labels.empty() ? "node '" + data.producer_node + "'" : labels.string());
  };
  const std::string largest = fmt::format("{} reaches {:g} (row {}, column {})", source(m.largest_source), m.largest, m.row, m.column);
  if (m.range == avg::Magnitudes::Range::TooSpread)
    throw Error(
        fmt::format("{}, but {} reach only {:g}: values {:g} apart cannot be combined in double precision (their squares are too far "
                    "apart); check that file (values in other units?) or leave the model out",
                    largest, source(m.smallest_source), m.smallest, m.largest / m.smallest));
  const bool large = m.largest > avg::kLargestMagnitude;
  const std::string beyond = large ? fmt::format("beyond {:g}, where the fit's squares overflow", avg::kLargestMagnitude)
                                   : fmt::format("and nothing is larger: below {:g} the fit's squares vanish", avg::kSmallestMagnitude);
  if (!scale_free)
    throw Error(
        fmt::format("{}, {}; {}, so it cannot rescale them: {} the predictions and the targets by a common factor (such as {:g}) before "
                    "combining, or use average.global, average.mallows or average.jackknife, which rescale internally",
                    largest, beyond, scale_dependence, large ? "divide" : "multiply", large ? m.largest : 1 / m.largest));
  avg::rescale(s, m);
  ctx.log(
      fmt::format("{}, {}: fitted on the predictions and targets divided by 2^{} (the weights do not depend on the scale; risks are in the "
                  "given units)",
                  largest, beyond, std::ilogb(s.scale)));
}

avg::Stack predictions_only(const Candidates& c, const std::string& split) {
  std::vector<const Matrix*> preds;
  for (std::size_t k = 0; k < c.models.size(); ++k) preds.push_back(&c.on(k, split));
  // A stand-in truth of the right shape; only the predictions are used.
  const auto rows = static_cast<std::size_t>(preds.front()->rows());
  if (c.kind == TaskKind::Classification) {
    const std::vector<int> classes(rows, 0);
    avg::Stack s = avg::make_stack(c.kind, c.names, preds, nullptr, &classes, fmt::format("split '{}'", split));
    s.classes.clear();
    return s;
  }
  const Matrix targets = Matrix::Zero(static_cast<Eigen::Index>(rows), preds.front()->cols());
  avg::Stack s = avg::make_stack(c.kind, c.names, preds, &targets, nullptr, fmt::format("split '{}'", split));
  s.Y.resize(0, 0);
  return s;
}

Matrix covariates_of(const Dataset& data, const std::string& split, const std::string& source, const std::vector<int>& columns) {
  const DatasetSplit& d = data.split(split);
  const ArrayFile* file = nullptr;
  std::string what;
  if ((source == "covariates" || source == "auto") && d.covariates) {
    file = &*d.covariates;
    what = "covariates";
  } else if ((source == "inputs" || source == "auto") && d.inputs) {
    file = &*d.inputs;
    what = "inputs";
  }
  if (!file)
    throw Error(fmt::format("split '{}' of the dataset of '{}' has no {} to take the covariates z from", split, data.producer_node,
                            source == "auto" ? "covariates or inputs" : source));
  const Matrix all = file->open(fmt::format("{} of split '{}'", what, split)).to_double();
  if (static_cast<std::size_t>(all.rows()) != d.rows)
    throw DataError(file->describe(), fmt::format("has {} rows but split '{}' has {} labels", all.rows(), split, d.rows));
  if (columns.empty()) return all;
  Matrix out(all.rows(), static_cast<Eigen::Index>(columns.size()));
  for (std::size_t j = 0; j < columns.size(); ++j) {
    if (columns[j] < 0 || columns[j] >= all.cols())
      throw Error(
          fmt::format("covariate column {} does not exist: the {} of split '{}' have {} columns", columns[j], what, split, all.cols()));
    out.col(static_cast<Eigen::Index>(j)) = all.col(columns[j]);
  }
  return out;
}

std::vector<int> column_list(const Params& p, const std::string& name) {
  std::vector<int> out;
  if (!p.has(name)) return out;
  for (const Value& v : p.get(name).as_array()) out.push_back(static_cast<int>(v.as_int()));
  return out;
}

void declare_loss_params(NodeSpec& s) {
  s.param(ParamSpec::choice("loss", "auto", {"auto", "squared", "absolute", "huber", "pinball", "cross_entropy"},
                            "the loss of the combination (auto: cross_entropy for class probabilities, squared for regression)"));
  s.param(ParamSpec::real("delta", 1.0, "huber: quadratic within delta of the truth, linear beyond").range(1e-12, 1e12));
  s.param(ParamSpec::real("tau", 0.5, "pinball: the quantile level").range(1e-6, 1 - 1e-6));
}

avg::Loss loss_from(const Params& p, TaskKind kind) {
  avg::Loss l;
  const std::string name = p.string("loss");
  l.kind =
      name == "auto" ? (kind == TaskKind::Classification ? avg::LossKind::CrossEntropy : avg::LossKind::Squared) : avg::parse_loss(name);
  l.delta = p.real("delta");
  l.tau = p.real("tau");
  if (kind == TaskKind::Regression && l.kind == avg::LossKind::CrossEntropy)
    throw Error("loss = \"cross_entropy\" needs class probabilities, but these are regression predictions");
  if (kind == TaskKind::Classification && l.kind != avg::LossKind::CrossEntropy && l.kind != avg::LossKind::Squared)
    throw Error(
        fmt::format("loss = \"{}\" is for regression values; combine class probabilities with cross_entropy or squared (Brier)", name));
  return l;
}

void declare_fit_split(NodeSpec& s) {
  s.param(ParamSpec::string("fit_split", "val", "the split the weights are fitted on (held-out or cross-fitted predictions)"));
}

std::shared_ptr<Predictions> combined_predictions(const std::string& name, const Candidates& c,
                                                  const std::map<std::string, Matrix>& weights) {
  auto out = std::make_shared<Predictions>();
  out->kind = c.kind;
  ModelPredictions m;
  m.model = name;
  for (const auto& [split, W] : weights) m.splits[split] = avg::combine(predictions_only(c, split), W);
  out->models.push_back(std::move(m));
  return out;
}

std::shared_ptr<Weights> weights_artifact(const Candidates& c, std::map<std::string, Matrix> weights, std::filesystem::path function_file) {
  auto out = std::make_shared<Weights>();
  out->models = c.names;
  out->splits = std::move(weights);
  out->function_file = std::move(function_file);
  return out;
}

std::map<std::string, Matrix> constant_weights(const Candidates& c, const Vector& w) {
  std::map<std::string, Matrix> out;
  for (const auto& split : c.common_splits()) {
    const Eigen::Index rows = c.on(0, split).rows();
    out[split] = w.transpose().replicate(rows, 1);
  }
  return out;
}

Json weights_json(const Candidates& c, const Vector& w) {
  Json j = Json::object();
  for (std::size_t k = 0; k < c.names.size(); ++k) j[c.names[k]] = w(static_cast<Eigen::Index>(k));
  return j;
}

}  // namespace caulk::averagers
