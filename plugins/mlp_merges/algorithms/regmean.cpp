#include "mlp_merges/algorithms/regmean.hpp"

#include <fmt/format.h>

#include <Eigen/Cholesky>
#include <algorithm>

#include "caulk/error.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

namespace caulk::mlp_merges {

using mlp::Mat;

InputGrams input_grams(const mlp::Model<float>& m, const Mat<float>& X, int block) {
  if (!m.loras.empty()) throw Error("RegMean needs models without LoRA factors: fold them into their layers first");
  if (X.rows() != m.input_dim()) throw Error(fmt::format("the model takes {} inputs but the data has {} columns", m.input_dim(), X.rows()));
  const mlp::Model<double> md = m.cast<double>();
  InputGrams out;
  out.samples = static_cast<long>(X.cols());
  auto add = [&](const std::string& name, const Mat<double>& H) {
    auto [it, fresh] = out.gram.try_emplace(name, Mat<double>::Zero(H.rows(), H.rows()));
    it->second.selfadjointView<Eigen::Lower>().rankUpdate(H);
  };
  for (Eigen::Index first = 0; first < X.cols(); first += block) {
    const Eigen::Index count = std::min<Eigen::Index>(block, X.cols() - first);
    mlp::Trace<double> t;
    mlp::forward<double>(md, X.middleCols(first, count).cast<double>(), &t);
    for (int l = 0; l < md.num_layers(); ++l) add(fmt::format("layers.{}.weight", l), t.input[l]);
    for (std::size_t k = 0; k < md.adapters.size(); ++k) {
      add(fmt::format("adapters.{}.down.weight", md.adapters[k].after), t.adapter_in[k]);
      add(fmt::format("adapters.{}.up.weight", md.adapters[k].after), t.adapter_act[k]);
    }
  }
  // rankUpdate fills the lower triangle only.
  for (auto& [name, G] : out.gram) G = G.selfadjointView<Eigen::Lower>();
  return out;
}

Mat<double> shrink_off_diagonal(const Mat<double>& G, double alpha) {
  Mat<double> out = alpha * G;
  out.diagonal() = G.diagonal();
  return out;
}

Mat<double> regmean_weight(const std::vector<Mat<double>>& weights, const std::vector<Mat<double>>& grams, const RegMeanOptions& o,
                           const std::string& tensor, bool* regularised) {
  if (weights.empty() || weights.size() != grams.size())
    throw Error(fmt::format("RegMean of '{}': no weights or no Gram matrices", tensor));
  const Eigen::Index in = weights.front().cols(), out = weights.front().rows();
  Mat<double> A = Mat<double>::Zero(in, in), B = Mat<double>::Zero(in, out), average = Mat<double>::Zero(out, in);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (grams[i].rows() != in || grams[i].cols() != in)
      throw Error(fmt::format("RegMean of '{}': the Gram matrix of model {} is {}x{}, the weight takes {} inputs", tensor, i,
                              grams[i].rows(), grams[i].cols(), in));
    A += grams[i];
    B.noalias() += grams[i] * weights[i].transpose();
    average += weights[i] / double(weights.size());
  }
  if (regularised) *regularised = false;
  Eigen::LLT<Mat<double>> llt(A);
  if (llt.info() == Eigen::Success && llt.rcond() >= o.singular_rcond) return llt.solve(B).transpose();
  if (!(o.jitter > 0))
    throw Error(
        fmt::format("RegMean of '{}': the summed Gram matrix of its inputs is singular (some inputs are zero, or linearly "
                    "dependent, on every model's data); set `jitter` > 0 to regularise towards the plain average",
                    tensor));
  const double mean_diag = A.diagonal().mean();
  const double lambda = o.jitter * (mean_diag > 0 ? mean_diag : 1.0);
  A.diagonal().array() += lambda;
  B += lambda * average.transpose();
  if (regularised) *regularised = true;
  Eigen::LDLT<Mat<double>> ldlt(A);
  if (ldlt.info() != Eigen::Success)
    throw Error(fmt::format("RegMean of '{}': the regularised Gram matrix could not be factorised (non-finite inputs?)", tensor));
  return ldlt.solve(B).transpose();
}

RegMeanResult regmean_merge(const std::vector<mlp::Model<float>>& models, const std::vector<InputGrams>& grams, const RegMeanOptions& o) {
  if (models.empty()) throw Error("no models to merge");
  if (grams.size() != models.size()) throw Error(fmt::format("{} Gram sets for {} models", grams.size(), models.size()));
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw Error(fmt::format("alpha = {} is outside [0, 1]", o.alpha));
  for (const auto& m : models)
    if (!m.loras.empty()) throw Error("RegMean needs models without LoRA factors: fold them into their layers first");
  RegMeanResult result;
  result.model = average_models(models);  // biases and everything that is not a linear map
  auto merged = mlp::parameters(result.model);
  std::vector<std::vector<mlp::ParamRef<const float>>> inputs;
  for (const auto& m : models) inputs.push_back(mlp::parameters(m));
  for (std::size_t k = 0; k < merged.size(); ++k) {
    const std::string& name = merged[k].name;
    if (!grams.front().gram.count(name)) continue;
    std::vector<Mat<double>> W, G;
    for (std::size_t i = 0; i < models.size(); ++i) {
      auto it = grams[i].gram.find(name);
      if (it == grams[i].gram.end()) throw Error(fmt::format("RegMean of '{}': no Gram matrix for model {}", name, i));
      const auto& p = inputs[i][k];
      W.push_back(Eigen::Map<const Mat<float>>(p.data, p.rows, p.cols).cast<double>());
      const double scale = o.mean_gram ? 1.0 / double(std::max(1L, grams[i].samples)) : 1.0;
      G.push_back(shrink_off_diagonal(it->second * scale, o.alpha));
    }
    bool regularised = false;
    const Mat<double> w = regmean_weight(W, G, o, name, &regularised);
    Eigen::Map<Mat<float>>(merged[k].data, merged[k].rows, merged[k].cols) = w.cast<float>();
    result.merged.push_back(name);
    if (regularised) result.regularised.push_back(name);
  }
  return result;
}

}  // namespace caulk::mlp_merges
