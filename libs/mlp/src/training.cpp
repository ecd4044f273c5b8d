#include "caulk/mlp/training.hpp"

#include "caulk/lbfgs.hpp"
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "caulk/error.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/parallel.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::mlp {

Samples Samples::subset(const std::vector<std::size_t>& index) const {
  Samples s;
  s.X.resize(X.rows(), static_cast<Eigen::Index>(index.size()));
  const bool classes = !y.classes.empty();
  if (!classes) s.y.values.resize(y.values.rows(), s.X.cols());
  for (std::size_t j = 0; j < index.size(); ++j) {
    const auto i = static_cast<Eigen::Index>(index[j]);
    s.X.col(static_cast<Eigen::Index>(j)) = X.col(i);
    if (classes)
      s.y.classes.push_back(y.classes[index[j]]);
    else
      s.y.values.col(static_cast<Eigen::Index>(j)) = y.values.col(i);
  }
  return s;
}

namespace {

// Columns [first, first + count) of a sample set.
Samples columns(const Samples& d, Eigen::Index first, Eigen::Index count) {
  Samples s;
  s.X = d.X.middleCols(first, count);
  if (!d.y.classes.empty())
    s.y.classes.assign(d.y.classes.begin() + first, d.y.classes.begin() + first + count);
  else
    s.y.values = d.y.values.middleCols(first, count);
  return s;
}

// Chunks a minibatch of `rows` is split into: a function of its size only (determinism).
int chunks_for(Eigen::Index rows) { return static_cast<int>(std::clamp<Eigen::Index>(rows / 128, 1, 8)); }

}  // namespace

double scheduled_rate(const TrainOptions& o, int epoch) {
  if (o.schedule == "constant") return o.learning_rate;
  if (o.schedule == "cosine") return o.learning_rate * 0.5 * (1 + std::cos(M_PI * double(epoch) / double(std::max(1, o.epochs))));
  if (o.schedule == "step") return o.learning_rate * std::pow(o.step_gamma, double(epoch / std::max(1, o.step_every)));
  throw Error(fmt::format("unknown learning-rate schedule '{}' (known: constant, cosine, step)", o.schedule));
}

void optimizer_step(const TrainOptions& o, double lr, long step, bool decay, Eigen::Map<Vec<float>> theta, Eigen::Map<Vec<float>> g,
                    Eigen::Map<Vec<float>> v1, Eigen::Map<Vec<float>> v2) {
  if (o.optimizer == "sgd") {
    if (decay) g += float(o.weight_decay) * theta;
    v1 = float(o.momentum) * v1 + g;  // PyTorch's SGD momentum (no dampening)
    theta -= float(lr) * v1;
  } else {
    if (decay) theta *= float(1 - lr * o.weight_decay);  // AdamW: decoupled
    v1 = float(o.beta1) * v1 + float(1 - o.beta1) * g;
    v2 = float(o.beta2) * v2 + float(1 - o.beta2) * g.cwiseProduct(g);
    const double c1 = 1 - std::pow(o.beta1, double(step)), c2 = 1 - std::pow(o.beta2, double(step));
    theta.array() -= float(lr / c1) * v1.array() / ((v2.array() / float(c2)).sqrt() + float(o.epsilon));
  }
}

double mean_loss(const Model<float>& m, const Samples& data) {
  const Eigen::Index n = data.size(), batch = 512;
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t blocks = static_cast<std::size_t>((n + batch - 1) / batch);
  std::vector<double> sums(blocks);
  caulk::parallel_for(blocks, [&](std::size_t k) {
    const Eigen::Index first = static_cast<Eigen::Index>(k) * batch, count = std::min(batch, n - first);
    const Samples part = columns(data, first, count);
    Trace<float> t;
    forward(m, part.X, &t);
    sums[k] = loss_and_output_gradient<float>(m, t, part.y, 1.0, nullptr);
  });
  double total = 0;
  for (double s : sums) total += s;
  return total / double(n);
}

Optimizer::Optimizer(const Model<float>& shape, const TrainOptions& o)
    : o_(o), first_moment_(zeros_like(shape)), second_moment_(zeros_like(shape)) {
  if (o.optimizer != "adam" && o.optimizer != "sgd")
    throw Error(fmt::format("unknown optimizer '{}' for minibatch steps (known: adam, sgd)", o.optimizer));
}

double Optimizer::step(Model<float>& m, const std::vector<bool>& trainable, const Samples& batch, double lr) {
  return step(m, trainable, batch, lr, {}, nullptr);
}

double Optimizer::step(Model<float>& m, const std::vector<bool>& trainable, const Samples& batch, double lr,
                       const std::vector<std::size_t>& index, ExtraLoss* extra) {
  const Eigen::Index rows = batch.size();
  if (extra && static_cast<Eigen::Index>(index.size()) != rows)
    throw Error(fmt::format("an extra loss term needs the positions of the minibatch's {} samples; {} were given", rows, index.size()));
  const int chunks = chunks_for(rows);
  while (static_cast<int>(grads_.size()) < chunks) grads_.push_back(zeros_like(m));
  std::vector<double> losses(static_cast<std::size_t>(chunks));
  caulk::parallel_for(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    const Eigen::Index a = rows * Eigen::Index(c) / chunks, b = rows * Eigen::Index(c + 1) / chunks;
    auto g = parameters(grads_[c]);
    for (std::size_t k = 0; k < g.size(); ++k)
      if (trainable[k]) std::fill(g[k].data, g[k].data + g[k].size(), 0.f);
    const Samples chunk = chunks == 1 ? Samples{} : columns(batch, a, b - a);
    const Samples& part = chunks == 1 ? batch : chunk;
    if (!extra) {
      losses[c] = accumulate_gradient(m, part.X, part.y, double(rows), trainable, grads_[c]);
    } else {
      // accumulate_gradient's steps, with the extra term between the loss and the backward pass.
      Trace<float> t;
      forward(m, part.X, &t);
      Mat<float> dz;
      losses[c] = loss_and_output_gradient(m, t, part.y, double(rows), &dz);
      const std::vector<std::size_t> chunk_index(index.begin() + a, index.begin() + b);
      losses[c] += extra->add(m, t, chunk_index, double(rows), trainable, dz, grads_[c]);
      backward(m, t, std::move(dz), trainable, grads_[c]);
    }
  });
  auto params = parameters(m);
  auto g0 = parameters(grads_[0]), m1 = parameters(first_moment_), m2 = parameters(second_moment_);
  for (int c = 1; c < chunks; ++c) {
    auto gc = parameters(grads_[c]);
    for (std::size_t k = 0; k < g0.size(); ++k)
      if (trainable[k]) Eigen::Map<Vec<float>>(g0[k].data, g0[k].size()) += Eigen::Map<Vec<float>>(gc[k].data, gc[k].size());
  }
  ++steps_;
  for (std::size_t k = 0; k < params.size(); ++k) {
    if (!trainable[k]) continue;
    optimizer_step(o_, lr, steps_, o_.weight_decay > 0 && !params[k].is_bias, Eigen::Map<Vec<float>>(params[k].data, params[k].size()),
                   Eigen::Map<Vec<float>>(g0[k].data, g0[k].size()), Eigen::Map<Vec<float>>(m1[k].data, m1[k].size()),
                   Eigen::Map<Vec<float>>(m2[k].data, m2[k].size()));
  }
  double loss = 0;
  for (double l : losses) loss += l;
  return loss;
}

TrainReport train(Model<float>& m, const std::vector<bool>& trainable, const Samples& data, const Samples* validation,
                  const TrainOptions& o) {
  return train(m, trainable, data, validation, o, nullptr);
}

TrainReport train(Model<float>& m, const std::vector<bool>& trainable, const Samples& data, const Samples* validation,
                  const TrainOptions& o, ExtraLoss* extra) {
  if (o.optimizer == "lbfgs") {
    if (extra) throw Error("an extra loss term trains by minibatch steps: use optimizer adam or sgd, not lbfgs");
    return fit_head_lbfgs(m, data, validation, o);
  }
  const Eigen::Index n = data.size();
  if (n == 0) throw Error("no training samples");
  scheduled_rate(o, 0);  // rejects an unknown schedule before any work
  Optimizer optimizer(m, o);

  seeding::SeededUniform rng(o.seed);
  std::vector<std::size_t> order(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;

  TrainReport report;
  Model<float> best = m;
  double best_loss = std::numeric_limits<double>::infinity();
  int since_best = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    if (extra) extra->start_epoch(m, epoch);
    rng.shuffle(order);
    const double lr = scheduled_rate(o, epoch);
    for (Eigen::Index first = 0; first < n; first += o.batch_size) {
      const Eigen::Index rows = std::min<Eigen::Index>(o.batch_size, n - first);
      const std::vector<std::size_t> index(order.begin() + first, order.begin() + first + rows);
      optimizer.step(m, trainable, data.subset(index), lr, index, extra);
    }
    report.epochs = epoch + 1;
    if (validation && validation->size() > 0) {
      const double v = mean_loss(m, *validation);
      report.validation_curve.push_back(v);
      if (v < best_loss) {
        best_loss = v;
        best = m;
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
  if (validation && validation->size() > 0 && std::isfinite(best_loss)) {
    m = std::move(best);
    report.validation_loss = best_loss;
  }
  report.train_loss = mean_loss(m, data);
  return report;
}

double linear_head_objective(const Mat<double>& F, const Targets<float>& y, int outputs, Output output, double wd, const Eigen::VectorXd& p,
                             Eigen::VectorXd& g) {
  const Eigen::Index C = outputs, D = F.rows(), n = F.cols();
  Eigen::Map<const Mat<double>> W(p.data(), C, D);
  Eigen::Map<const Vec<double>> b(p.data() + C * D, C);
  Mat<double> Z = W * F;
  Z.colwise() += b;
  double f = 0;
  Mat<double> dZ(C, n);
  if (output == Output::Softmax) {
    for (Eigen::Index i = 0; i < n; ++i) {
      const double mx = Z.col(i).maxCoeff();
      const auto e = (Z.col(i).array() - mx).exp();
      const double s = e.sum();
      f += mx + std::log(s) - Z(y.classes[static_cast<std::size_t>(i)], i);
      dZ.col(i) = e / s;
      dZ(y.classes[static_cast<std::size_t>(i)], i) -= 1;
    }
    f /= double(n);
    dZ /= double(n);
  } else {
    const Mat<double> R = Z - y.values.cast<double>();
    f = R.squaredNorm() / double(n * C);
    dZ = R * (2.0 / double(n * C));
  }
  f += 0.5 * wd * W.squaredNorm();
  g.resize(p.size());
  Eigen::Map<Mat<double>>(g.data(), C, D) = dZ * F.transpose() + wd * W;
  g.tail(C) = dZ.rowwise().sum();
  return f;
}

TrainReport fit_head_lbfgs(Model<float>& m, const Samples& data, const Samples* validation, const TrainOptions& o) {
  const int L = m.num_layers();
  if (m.feature_layer != L - 2)
    throw Error("L-BFGS fits a linear head only: the head must be one layer reading the features (use adam or sgd)");
  if (data.size() == 0) throw Error("no training samples");
  // Features once, in double: the head's problem is convex and small.
  Mat<double> F = forward<float>(m, data.X, nullptr, m.feature_layer).cast<double>();
  const Eigen::Index C = m.output_dim(), D = F.rows();
  auto objective = [&](const Eigen::VectorXd& p, Eigen::VectorXd& g) {
    return linear_head_objective(F, data.y, static_cast<int>(C), m.output, o.weight_decay, p, g);
  };

  Eigen::VectorXd p(C * D + C);
  Eigen::Map<Mat<double>>(p.data(), C, D) = m.layers.back().W.cast<double>();
  p.tail(C) = m.layers.back().b.cast<double>();
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = o.lbfgs_tolerance;
  param.epsilon_rel = o.lbfgs_tolerance;
  param.max_iterations = o.lbfgs_iterations;
  TrainReport report;
  report.epochs = minimize_lbfgs(objective, p, param).iterations;
  const Eigen::VectorXd& best = p;
  m.layers.back().W = Eigen::Map<const Mat<double>>(best.data(), C, D).cast<float>();
  m.layers.back().b = best.tail(C).cast<float>();
  report.best_epoch = report.epochs;
  report.train_loss = mean_loss(m, data);
  if (validation && validation->size() > 0) {
    report.validation_loss = mean_loss(m, *validation);
    report.validation_curve.push_back(report.validation_loss);
  }
  return report;
}

}  // namespace caulk::mlp
