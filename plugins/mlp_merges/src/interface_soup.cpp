#include "mlp_merges/src/interface_soup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "caulk/io/safetensors.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/model.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp_merges {

namespace {

using Parameters = std::vector<std::vector<float>>;  // per parameters() entry

Parameters read_all(const models::Model& m, const std::vector<models::ParameterInfo>& infos) {
  Parameters out;
  for (const auto& p : infos) {
    out.emplace_back(static_cast<std::size_t>(p.size()));
    m.read_parameter(p.name, out.back());
  }
  return out;
}

// The uniform average of the members' parameters, summed in float64 in member order.
Parameters average(const std::vector<Parameters>& all, const std::vector<std::size_t>& members) {
  Parameters out = all[members[0]];
  for (std::size_t t = 0; t < out.size(); ++t)
    for (std::size_t j = 0; j < out[t].size(); ++j) {
      double sum = 0;
      for (std::size_t i : members) sum += all[i][t][j];
      out[t][j] = float(sum / double(members.size()));
    }
  return out;
}

}  // namespace

InterfaceSoup interface_greedy_soup(const NodeContext& ctx, const LoadedModels& in, const Dataset& data, const std::string& split,
                                    SoupMetric metric) {
  const CheckpointRef& first = *std::find_if(in.refs.begin(), in.refs.end(), [](const CheckpointRef& r) { return !r.module.empty(); });
  for (const auto& r : in.refs)
    if (r.module.empty() || r.feature_method != first.feature_method)
      throw Error(fmt::format(
          "{}: models '{}' and '{}' cannot share one soup: {} (soup fine-tunes of one pre-trained model)", ctx.type(), first.model, r.model,
          r.module.empty() ? fmt::format("'{}' is a TorchScript model ({}), '{}' a caulk MLP", first.model, first.module.string(), r.model)
                           : "their feature methods differ"));
  std::vector<std::unique_ptr<models::Model>> opened;
  for (const auto& r : in.refs) opened.push_back(models::open_model(models::source_of(r)));
  const std::vector<models::ParameterInfo> infos = opened[0]->parameters();
  std::vector<Parameters> params;
  for (std::size_t i = 0; i < opened.size(); ++i) {
    const auto mine = opened[i]->parameters();
    bool same = mine.size() == infos.size();
    for (std::size_t t = 0; same && t < infos.size(); ++t) same = mine[t].name == infos[t].name && mine[t].shape == infos[t].shape;
    if (!same)
      throw Error(fmt::format("{}: {} and {} have different parameters (names or shapes): a soup averages models of one architecture",
                              ctx.type(), opened[0]->describe(), opened[i]->describe()));
    params.push_back(read_all(*opened[i], infos));
  }
  const DatasetSplit& held_out = data.split(split);
  const models::ModelInputs inputs = models::ModelInputs::of_split(data, split);
  const auto score = [&](const models::Model& m) {
    const bool logits = m.output_kind() == models::OutputKind::Logits;
    if (logits == (metric == SoupMetric::Mse))
      throw Error(fmt::format("{}: {} outputs {}", ctx.type(), m.describe(),
                              logits ? "class logits, which mse does not judge (use accuracy or log_loss)"
                                     : "regression values, which accuracy and log_loss do not judge (use mse)"));
    const models::Outputs o = models::run_in_batches(m, inputs, 64, false, true);
    if (metric == SoupMetric::Mse) return metrics::mean_squared_error(o.outputs.cast<double>(), held_out.targets);
    const Matrix p = models::softmax_rows(o.outputs);
    return metric == SoupMetric::Accuracy ? metrics::accuracy(p, held_out.classes) : metrics::log_loss(p, held_out.classes);
  };
  std::vector<double> individual;
  for (const auto& m : opened) individual.push_back(score(*m));
  const auto soup_model = [&](const std::vector<std::size_t>& members) {
    std::unique_ptr<models::Model> m = opened[0]->clone();
    const Parameters avg = average(params, members);
    for (std::size_t t = 0; t < infos.size(); ++t) m->write_parameter(infos[t].name, avg[t]);
    return m;
  };
  InterfaceSoup out;
  out.steps = greedy_soup_steps(
      individual, [&](const std::vector<std::size_t>& members) { return score(*soup_model(members)); }, higher_is_better(metric));
  out.module = first.module;
  out.feature_method = first.feature_method;

  const Parameters soup = average(params, out.steps.members);
  for (std::size_t t = 0; t < infos.size(); ++t) {
    io::Tensor tensor;
    tensor.name = infos[t].name;
    tensor.shape.assign(infos[t].shape.begin(), infos[t].shape.end());
    tensor.data.resize(soup[t].size() * sizeof(float));
    std::memcpy(tensor.data.data(), soup[t].data(), tensor.data.size());
    out.tensors.push_back(std::move(tensor));
  }
  return out;
}

}  // namespace caulk::mlp_merges
