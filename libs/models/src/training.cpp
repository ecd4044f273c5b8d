#include "caulk/models/training.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "caulk/error.hpp"
#include "caulk/lbfgs.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::models {

OutputTerm::~OutputTerm() = default;

InputBatch TrainingSamples::all() const {
  InputBatch b;
  b.dtype = dtype;
  b.shape = shape;
  b.data = data.data();
  return b;
}

TrainingSamples TrainingSamples::subset(const std::vector<std::size_t>& index) const {
  TrainingSamples s;
  s.dtype = dtype;
  s.shape = shape;
  s.shape.at(0) = static_cast<std::int64_t>(index.size());
  const std::size_t bytes = static_cast<std::size_t>(all().sample_size()) * io::dtype_size(dtype);
  s.data.resize(bytes * index.size());
  if (!classification()) s.values.resize(static_cast<Eigen::Index>(index.size()), values.cols());
  for (std::size_t j = 0; j < index.size(); ++j) {
    if (index[j] >= static_cast<std::size_t>(size()))
      throw Error(fmt::format("sample {} is outside the {} training samples", index[j], size()));
    if (bytes) std::memcpy(s.data.data() + j * bytes, data.data() + index[j] * bytes, bytes);
    if (classification())
      s.classes.push_back(classes[index[j]]);
    else
      s.values.row(static_cast<Eigen::Index>(j)) = values.row(static_cast<Eigen::Index>(index[j]));
  }
  return s;
}

TrainingSamples training_samples(const Dataset& data, const std::string& split, const Model& model) {
  const DatasetSplit& s = split_with_inputs(data, split);
  const ModelInputs inputs = ModelInputs::of_split(data, split);
  if (inputs.rows() != static_cast<std::int64_t>(s.rows))
    throw DataError(inputs.describe(), fmt::format("split '{}' has {} rows of inputs but {} labels ({})", split, inputs.rows(), s.rows,
                                                   s.labels_file.string()));
  TrainingSamples out;
  const InputBatch b = inputs.batch(0, inputs.rows(), inputs.dtype_for(model), out.data);
  out.dtype = b.dtype;
  out.shape = b.shape;
  if (data.kind == TaskKind::Classification)
    out.classes = s.classes;
  else
    out.values = s.targets.cast<float>();
  return out;
}

double output_loss(const RowMatrixF& z, const TrainingSamples& samples, const std::vector<std::size_t>& rows, double divisor,
                   RowMatrixF* dz) {
  const Eigen::Index n = z.rows();
  if (static_cast<Eigen::Index>(rows.size()) != n) throw Error(fmt::format("{} outputs for a batch of {} samples", n, rows.size()));
  double total = 0;
  if (samples.classification()) {
    if (dz) dz->resize(n, z.cols());
    for (Eigen::Index i = 0; i < n; ++i) {
      const int c = samples.classes[rows[static_cast<std::size_t>(i)]];
      if (c < 0 || c >= z.cols()) throw Error(fmt::format("class {} is outside the model's {} outputs", c, z.cols()));
      const double mx = z.row(i).maxCoeff();
      double sum = 0;
      for (Eigen::Index k = 0; k < z.cols(); ++k) sum += std::exp(double(z(i, k)) - mx);
      total += mx + std::log(sum) - double(z(i, c));
      if (dz) {
        for (Eigen::Index k = 0; k < z.cols(); ++k) (*dz)(i, k) = float(std::exp(double(z(i, k)) - mx) / sum / divisor);
        (*dz)(i, c) -= float(1.0 / divisor);
      }
    }
    return total / divisor;
  }
  if (samples.values.cols() != z.cols())
    throw Error(fmt::format("the model gives {} values per sample but the task has {} targets", z.cols(), samples.values.cols()));
  RowMatrixF r(n, z.cols());
  for (Eigen::Index i = 0; i < n; ++i)
    r.row(i) = z.row(i) - samples.values.row(static_cast<Eigen::Index>(rows[static_cast<std::size_t>(i)]));
  const double scale = divisor * double(z.cols());
  total = r.cast<double>().squaredNorm() / double(z.cols());
  if (dz) *dz = r * float(2.0 / scale);
  return total / divisor;
}

double mean_loss(const Model& model, const TrainingSamples& samples) {
  const std::int64_t n = samples.size(), batch = 512;
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const InputBatch x = samples.all();
  double total = 0;
  for (std::int64_t first = 0; first < n; first += batch) {
    const std::int64_t count = std::min(batch, n - first);
    const Outputs out = model.run(x.slice(first, count), false, true);
    std::vector<std::size_t> rows(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::size_t>(first) + i;
    total += output_loss(out.outputs, samples, rows, 1.0, nullptr);
  }
  return total / double(n);
}

ModelOptimizer::ModelOptimizer(const Model& model, const mlp::TrainOptions& o) : o_(o), names_(model.trainable()) {
  if (o.optimizer != "adam" && o.optimizer != "sgd")
    throw Error(fmt::format("unknown optimizer '{}' for minibatch steps (known: adam, sgd)", o.optimizer));
  if (names_.empty()) throw Error(fmt::format("{} has no trainable parameters", model.describe()));
  const auto infos = model.parameters();
  for (const auto& name : names_) {
    auto it = std::find_if(infos.begin(), infos.end(), [&](const ParameterInfo& p) { return p.name == name; });
    if (it == infos.end()) throw Error(fmt::format("{}: trainable parameter '{}' is not among its parameters", model.describe(), name));
    decay_.push_back(it->shape.size() >= 2);
    std::vector<float> v(static_cast<std::size_t>(it->size()));
    model.read_parameter(name, v);
    theta_.push_back(v);
    first_.emplace_back(v.size(), 0.f);
    second_.emplace_back(v.size(), 0.f);
  }
}

double ModelOptimizer::step(Model& model, const TrainingSamples& samples, const std::vector<std::size_t>& index, double lr,
                            OutputTerm* term) {
  const TrainingSamples batch = samples.subset(index);
  const double rows = double(index.size());
  std::unique_ptr<ForwardPass> pass = model.forward(batch.all());
  RowMatrixF d_outputs, d_features;
  std::vector<std::size_t> local(index.size());
  for (std::size_t i = 0; i < local.size(); ++i) local[i] = i;
  double loss = output_loss(pass->values.outputs, batch, local, rows, &d_outputs);
  const bool features = term && term->uses_features();
  if (features) d_features = RowMatrixF::Zero(pass->values.features.rows(), pass->values.features.cols());
  if (term) loss += term->add(pass->values, index, rows, d_features, d_outputs);
  for (auto& g : grad_.values) std::fill(g.begin(), g.end(), 0.f);
  model.backward(*pass, features ? &d_features : nullptr, &d_outputs, grad_);
  if (grad_.names != names_)
    throw Error(fmt::format("{}: the gradients name other parameters than trainable() (changed during training?)", model.describe()));
  ++steps_;
  for (std::size_t k = 0; k < names_.size(); ++k) {
    using V = Eigen::Map<mlp::Vec<float>>;
    const auto size = static_cast<Eigen::Index>(theta_[k].size());
    mlp::optimizer_step(o_, lr, steps_, o_.weight_decay > 0 && decay_[k], V(theta_[k].data(), size), V(grad_.values[k].data(), size),
                        V(first_[k].data(), size), V(second_[k].data(), size));
    model.write_parameter(names_[k], theta_[k]);
  }
  return loss;
}

namespace {

// The trainable parameters' values, to keep the best epoch's.
std::vector<std::vector<float>> snapshot(const Model& model) {
  std::vector<std::vector<float>> out;
  const auto infos = model.parameters();
  for (const auto& name : model.trainable()) {
    auto it = std::find_if(infos.begin(), infos.end(), [&](const ParameterInfo& p) { return p.name == name; });
    std::vector<float> v(static_cast<std::size_t>(it->size()));
    model.read_parameter(name, v);
    out.push_back(std::move(v));
  }
  return out;
}

void restore(Model& model, const std::vector<std::vector<float>>& values) {
  const auto names = model.trainable();
  for (std::size_t k = 0; k < names.size(); ++k) model.write_parameter(names[k], values[k]);
}

}  // namespace

mlp::TrainReport train(Model& model, const TrainingSamples& data, const TrainingSamples* validation, const mlp::TrainOptions& o,
                       OutputTerm* term) {
  if (o.optimizer == "lbfgs") {
    if (term) throw Error("an extra loss term trains by minibatch steps: use optimizer adam or sgd, not lbfgs");
    return fit_head_lbfgs(model, data, validation, o);
  }
  const std::int64_t n = data.size();
  if (n == 0) throw Error("no training samples");
  mlp::scheduled_rate(o, 0);  // rejects an unknown schedule before any work
  ModelOptimizer optimizer(model, o);
  if (validation && validation->size() == 0) validation = nullptr;

  seeding::SeededUniform rng(o.seed);
  std::vector<std::size_t> order(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;

  mlp::TrainReport report;
  std::vector<std::vector<float>> best;
  double best_loss = std::numeric_limits<double>::infinity();
  int since_best = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    if (term) term->start_epoch(model, epoch);
    rng.shuffle(order);
    const double lr = mlp::scheduled_rate(o, epoch);
    for (std::int64_t first = 0; first < n; first += o.batch_size) {
      const std::int64_t rows = std::min<std::int64_t>(o.batch_size, n - first);
      const std::vector<std::size_t> index(order.begin() + first, order.begin() + first + rows);
      optimizer.step(model, data, index, lr, term);
    }
    report.epochs = epoch + 1;
    if (validation) {
      const double v = mean_loss(model, *validation);
      report.validation_curve.push_back(v);
      if (v < best_loss) {
        best_loss = v;
        best = snapshot(model);
        report.best_epoch = epoch + 1;
        since_best = 0;
      } else if (o.patience > 0 && ++since_best >= o.patience) {
        report.stopped_early = true;
        break;
      }
    } else {
      report.best_epoch = epoch + 1;
    }
  }
  if (validation && std::isfinite(best_loss)) {
    restore(model, best);
    report.validation_loss = best_loss;
  }
  report.train_loss = mean_loss(model, data);
  return report;
}

mlp::TrainReport fit_head_lbfgs(Model& model, const TrainingSamples& data, const TrainingSamples* validation, const mlp::TrainOptions& o) {
  const std::vector<std::string> head = model.head_parameters();
  if (head.size() != 2) throw Error(fmt::format("{}: L-BFGS fits a new linear head only (replace_head first)", model.describe()));
  if (data.size() == 0) throw Error("no training samples");
  // Features once, in double: the head's problem is convex and small.
  const InputBatch x = data.all();
  const std::int64_t n = data.size(), batch = 512;
  mlp::Mat<double> F;
  for (std::int64_t first = 0; first < n; first += batch) {
    const std::int64_t count = std::min(batch, n - first);
    const Outputs out = model.run(x.slice(first, count), true, false);
    if (F.size() == 0) F.resize(out.features.cols(), n);
    F.middleCols(first, count) = out.features.transpose().cast<double>();
  }
  const auto infos = model.parameters();
  auto shape_of = [&](const std::string& name) {
    auto it = std::find_if(infos.begin(), infos.end(), [&](const ParameterInfo& p) { return p.name == name; });
    if (it == infos.end()) throw Error(fmt::format("{}: no parameter '{}'", model.describe(), name));
    return it->shape;
  };
  const auto ws = shape_of(head[0]);
  if (ws.size() != 2 || ws[1] != F.rows())
    throw Error(fmt::format("{}: the head '{}' does not read the {} features", model.describe(), head[0], F.rows()));
  const Eigen::Index C = ws[0], D = ws[1];
  mlp::Targets<float> y;
  if (data.classification())
    y.classes = data.classes;
  else
    y.values = data.values.transpose();
  const mlp::Output output = model.output_kind() == OutputKind::Logits ? mlp::Output::Softmax : mlp::Output::Identity;
  auto objective = [&](const Eigen::VectorXd& p, Eigen::VectorXd& g) {
    return mlp::linear_head_objective(F, y, static_cast<int>(C), output, o.weight_decay, p, g);
  };
  std::vector<float> w(static_cast<std::size_t>(C * D)), b(static_cast<std::size_t>(C));
  model.read_parameter(head[0], w);
  model.read_parameter(head[1], b);
  Eigen::VectorXd p(C * D + C);
  // The head's weight is C x D row-major; the objective packs it column-major.
  Eigen::Map<mlp::Mat<double>>(p.data(), C, D) =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(w.data(), C, D).cast<double>();
  p.tail(C) = Eigen::Map<const Eigen::VectorXf>(b.data(), C).cast<double>();
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = o.lbfgs_tolerance;
  param.epsilon_rel = o.lbfgs_tolerance;
  param.max_iterations = o.lbfgs_iterations;
  mlp::TrainReport report;
  report.epochs = minimize_lbfgs(objective, p, param).iterations;
  Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(w.data(), C, D) =
      Eigen::Map<const mlp::Mat<double>>(p.data(), C, D).cast<float>();
  Eigen::Map<Eigen::VectorXf>(b.data(), C) = p.tail(C).cast<float>();
  model.write_parameter(head[0], w);
  model.write_parameter(head[1], b);
  report.best_epoch = report.epochs;
  report.train_loss = mean_loss(model, data);
  if (validation && validation->size() > 0) {
    report.validation_loss = mean_loss(model, *validation);
    report.validation_curve.push_back(report.validation_loss);
  }
  return report;
}

}  // namespace caulk::models
