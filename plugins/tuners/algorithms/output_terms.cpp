#include "tuners/algorithms/output_terms.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "caulk/error.hpp"
#include "tuners/algorithms/btuning.hpp"

namespace caulk::tuners {

namespace {

using models::Model;
using models::Outputs;
using models::TrainingSamples;

// The model's features on every training sample (N x D), in batches of 512.
RowMatrixF training_features(const Model& model, const TrainingSamples& train) {
  const models::InputBatch x = train.all();
  RowMatrixF F;
  for (std::int64_t first = 0, n = train.size(); first < n; first += 512) {
    const std::int64_t count = std::min<std::int64_t>(512, n - first);
    const Outputs out = model.run(x.slice(first, count), true, false);
    if (F.size() == 0) F.resize(n, out.features.cols());
    F.middleRows(first, count) = out.features;
  }
  return F;
}

class BTuningTerm : public models::OutputTerm {
 public:
  BTuningTerm(const TrainingSamples& train, Matrix targets, double lambda, tune::StudentWeights student, Json facts)
      : train_(train), targets_(std::move(targets)), lambda_(lambda), student_(student), facts_(std::move(facts)) {
    if (targets_.rows() != train.size())
      throw Error(fmt::format("{} rows of teacher targets for {} training samples", targets_.rows(), train.size()));
  }
  bool uses_features() const override { return true; }
  void start_epoch(const Model& model, int epoch) override {
    if (student_ == tune::StudentWeights::Refit || epoch == 0 || weights_.size() == 0) fit(model);
  }
  double add(const Outputs& values, const std::vector<std::size_t>& index, double divisor, RowMatrixF& d_features,
             RowMatrixF& /*d_outputs*/) override {
    const RowMatrixF& f = values.features;  // n x D
    if (weights_.cols() != f.cols())
      throw Error(fmt::format("student LogME weights have {} columns for {} features", weights_.cols(), f.cols()));
    double total = 0;
    for (Eigen::Index j = 0; j < f.rows(); ++j) {
      const Eigen::VectorXd r =
          weights_ * f.row(j).transpose().cast<double>() - targets_.row(static_cast<Eigen::Index>(index[j])).transpose();
      total += r.squaredNorm();
      d_features.row(j) += (2 * lambda_ / divisor * (weights_.transpose() * r)).transpose().cast<float>();
    }
    return lambda_ * total / divisor;
  }
  nlohmann::ordered_json report(const Model& model) override {
    const Matrix F = training_features(model, train_).cast<double>();
    const Matrix r = F * weights_.transpose() - targets_;
    Json out = facts_;
    out["distance_to_teachers"] = r.rowwise().squaredNorm().mean();
    return out;
  }

 private:
  void fit(const Model& model) {
    mlp::Targets<float> y;
    if (train_.classification())
      y.classes = train_.classes;
    else
      y.values = train_.values.transpose();
    const mlp::Mat<float> F = training_features(model, train_).transpose();  // D x N
    weights_ = tune::logme_weights(F, y, static_cast<int>(targets_.cols()), train_.classification());
    if (weights_.rows() != targets_.cols())
      throw Error(fmt::format("the student has {} outputs but the teacher targets {} columns", weights_.rows(), targets_.cols()));
  }

  const TrainingSamples& train_;
  Matrix targets_;  // N x C
  double lambda_;
  tune::StudentWeights student_;
  Json facts_;
  Matrix weights_;  // C x D
};

Eigen::VectorXd log_softmax(const Eigen::VectorXd& z) {
  const double mx = z.maxCoeff();
  return z.array() - (mx + std::log((z.array() - mx).exp().sum()));
}

class DistillTerm : public models::OutputTerm {
 public:
  DistillTerm(const TrainingSamples& train, Matrix soft, double temperature, double alpha, Json facts)
      : labels_(train.classes), soft_(std::move(soft)), T_(temperature), alpha_(alpha), facts_(std::move(facts)) {
    if (!train.classification()) throw Error("distillation needs a classification task");
    if (soft_.rows() != train.size())
      throw Error(fmt::format("{} rows of soft targets for {} training samples", soft_.rows(), train.size()));
  }
  bool uses_features() const override { return false; }
  double add(const Outputs& values, const std::vector<std::size_t>& index, double divisor, RowMatrixF& /*d_features*/,
             RowMatrixF& d_outputs) override {
    const RowMatrixF& z = values.outputs;  // n x C logits
    if (z.cols() != soft_.cols())
      throw Error(fmt::format("the student has {} outputs but the soft targets {} classes", z.cols(), soft_.cols()));
    double total = 0;
    for (Eigen::Index j = 0; j < z.rows(); ++j) {
      const std::size_t row = index[static_cast<std::size_t>(j)];
      const Eigen::VectorXd zj = z.row(j).transpose().cast<double>();
      const Eigen::VectorXd q = soft_.row(static_cast<Eigen::Index>(row)).transpose();
      const Eigen::VectorXd log_p = log_softmax(zj), log_pT = log_softmax(zj / T_);
      const int y = labels_[row];
      const Eigen::VectorXd p = log_p.array().exp();
      double kl = 0;
      for (Eigen::Index c = 0; c < zj.size(); ++c)
        if (q(c) > 0) kl += q(c) * (std::log(q(c)) - log_pT(c));
      total += alpha_ * (T_ * T_ * kl + log_p(y));  // alpha (T^2 KL - CE), CE = -log p_y
      Eigen::VectorXd g = alpha_ * (T_ * (log_pT.array().exp() - q.array()).matrix() - p);
      g(y) += alpha_;
      d_outputs.row(j) += (g / divisor).transpose().cast<float>();
    }
    return total / divisor;
  }
  nlohmann::ordered_json report(const Model& /*model*/) override { return facts_; }

 private:
  std::vector<int> labels_;
  Matrix soft_;  // N x C
  double T_, alpha_;
  Json facts_;
};

}  // namespace

std::unique_ptr<models::OutputTerm> btuning_output_term(const Json& term, const Params& p, const TrainingSamples& train) {
  const double lambda = p.real("lambda");
  Json facts{
      {"teachers", term.at("teachers")}, {"lambda", lambda}, {"tau", p.real("tau")}, {"student_weights", p.string("student_weights")}};
  return std::make_unique<BTuningTerm>(train, matrix_from_json(term.at("target")), lambda,
                                       tune::parse_student_weights(p.string("student_weights")), std::move(facts));
}

std::unique_ptr<models::OutputTerm> distill_output_term(const Json& term, const Params& p, const TrainingSamples& train) {
  const double T = p.real("temperature"), alpha = p.real("alpha");
  Json facts{{"teachers", term.at("teachers")}, {"temperature", T}, {"alpha", alpha}};
  return std::make_unique<DistillTerm>(train, matrix_from_json(term.at("soft")), T, alpha, std::move(facts));
}

}  // namespace caulk::tuners
