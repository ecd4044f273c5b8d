// Localized model averaging against its floor, in the same run (issue 6, docs/performance.md).
//
// softmax_linear weights with squared loss on N rows, K = 10 models, C = 10 outputs and a basis of
// 32 columns (the intercept and 31 standardised covariates), float64, one thread:
//   one L-BFGS iteration within 3 x the floor, and linear in N (N = 10^4 and 10^5);
//   the floor: one pass over the data that computes the K x C predictions' weighted sum
//   f_i = sum_k w_ik F_ik and its gradient s_ik = <d loss / d f_i, F_ik> (weights given).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>

#include "bench_support.hpp"
#include "averagers/algorithms/local_average.hpp"

namespace {

using caulk::Matrix;
using caulk::RowMatrix;
constexpr int kModels = 10, kOutputs = 10, kCovariates = 31;

struct Problem {
  caulk::avg::Stack stack;
  RowMatrix phi;   // N x 32
  Matrix weights;  // N x K, for the floor
};

const Problem& problem(long rows) {
  static std::map<long, Problem> cache;
  auto it = cache.find(rows);
  if (it != cache.end()) return it->second;
  std::mt19937_64 rng(rows);
  std::normal_distribution<double> normal;
  Problem p;
  Matrix z(rows, kCovariates), y(rows, kOutputs);
  for (long i = 0; i < rows; ++i) {
    for (int q = 0; q < kCovariates; ++q) z(i, q) = normal(rng);
    for (int c = 0; c < kOutputs; ++c) y(i, c) = normal(rng);
  }
  std::vector<Matrix> preds(kModels, Matrix(rows, kOutputs));
  std::vector<const Matrix*> ptrs;
  std::vector<std::string> names;
  for (int k = 0; k < kModels; ++k) {
    // Model k is good where covariate k is positive: the weights have something to learn.
    for (long i = 0; i < rows; ++i)
      for (int c = 0; c < kOutputs; ++c) preds[k](i, c) = y(i, c) + (z(i, k) > 0 ? 0.2 : 1.0) * normal(rng);
    ptrs.push_back(&preds[k]);
    names.push_back(std::string("m").append(std::to_string(k)));
  }
  p.stack = caulk::avg::make_stack(caulk::TaskKind::Regression, names, ptrs, &y, nullptr, "bench");
  p.phi = caulk::avg::fit_basis(caulk::avg::BasisKind::Raw, z, 0, 0, 1, 0).expand(z);
  p.weights = Matrix::Constant(rows, kModels, 1.0 / kModels);
  return cache.emplace(rows, std::move(p)).first->second;
}

// The floor: the weighted sum of the K x C predictions and its gradient, one fused pass.
void BM_Floor_WeightedSumAndGradient(benchmark::State& state) {
  const Problem& p = problem(state.range(0));
  const auto& s = p.stack;
  Matrix S(s.rows(), kModels);
  for (auto _ : state) {
    double loss = 0;
    for (Eigen::Index i = 0; i < s.F.rows(); ++i) {
      const double* Fi = s.F.row(i).data();
      double f[kOutputs] = {}, g[kOutputs];
      for (int k = 0; k < kModels; ++k)
        for (int c = 0; c < kOutputs; ++c) f[c] += p.weights(i, k) * Fi[k * kOutputs + c];
      for (int c = 0; c < kOutputs; ++c) {
        const double r = f[c] - s.Y(i, c);
        loss += r * r;
        g[c] = 2 * r / kOutputs;
      }
      for (int k = 0; k < kModels; ++k) {
        double sk = 0;
        for (int c = 0; c < kOutputs; ++c) sk += g[c] * Fi[k * kOutputs + c];
        S(i, k) = sk;
      }
    }
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(S.data());
  }
}

// One evaluation of the objective and its gradient (what each L-BFGS step needs at least once).
void BM_Objective(benchmark::State& state) {
  const Problem& p = problem(state.range(0));
  caulk::Vector theta = caulk::Vector::Constant(kModels * p.phi.cols(), 0.01), gradient;
  const caulk::avg::Loss loss;
  for (auto _ : state) benchmark::DoNotOptimize(caulk::avg::softmax_linear_objective(p.stack, p.phi, loss, 1e-4, 1e-6, theta, &gradient));
}

// An L-BFGS fit from zero of at most twenty iterations; the time is reported per iteration done
// (line-search evaluations included) in the summary below.
constexpr int kIterations = 20;
std::map<long, caulk::avg::LbfgsStats> lbfgs_stats;

void BM_LbfgsFit(benchmark::State& state) {
  const Problem& p = problem(state.range(0));
  const caulk::avg::Loss loss;
  for (auto _ : state) {
    caulk::Vector theta = caulk::Vector::Zero(kModels * p.phi.cols());
    auto objective = [&](const caulk::Vector& x, caulk::Vector* g, const caulk::avg::Loss& l) {
      return caulk::avg::softmax_linear_objective(p.stack, p.phi, l, 1e-4, 1e-6, x, g);
    };
    lbfgs_stats[state.range(0)] = caulk::avg::minimise_smoothed(objective, loss, 0, theta, kIterations, 0.0);
  }
}

BENCHMARK(BM_Floor_WeightedSumAndGradient)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_Objective)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_LbfgsFit)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

// Like bench_support's reporter, keyed by the full name (the argument N included).
class Recorder : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> seconds;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration) seconds[r.benchmark_name()] = r.GetAdjustedRealTime() / 1e3;
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  openblas_set_num_threads(1);
  Recorder reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::map<long, double> per_iteration;
  for (long n : {10000L, 100000L}) {
    double floor = 0, objective = 0, lbfgs = 0;
    for (const auto& [name, s] : reporter.seconds) {
      if (name.rfind("BM_Floor_WeightedSumAndGradient/" + std::to_string(n) + "/", 0) == 0) floor = s;
      if (name.rfind("BM_Objective/" + std::to_string(n) + "/", 0) == 0) objective = s;
      if (name.rfind("BM_LbfgsFit/" + std::to_string(n) + "/", 0) == 0) lbfgs = s / std::max(1, lbfgs_stats[n].iterations);
    }
    if (floor <= 0 || lbfgs <= 0) continue;
    per_iteration[n] = lbfgs;
    std::printf(
        "\nN = %ld: floor %.3f ms, objective+gradient %.3f ms (%.2f x floor), L-BFGS iteration %.3f ms (%.2f evaluations each): "
        "%.2f x floor (target <= 3.00): %s\n",
        n, floor * 1e3, objective * 1e3, objective / floor, lbfgs * 1e3,
        double(lbfgs_stats[n].evaluations) / std::max(1, lbfgs_stats[n].iterations), lbfgs / floor,
        lbfgs / floor <= 3.0 ? "MET" : "NOT MET");
  }
  if (per_iteration.count(10000) && per_iteration.count(100000))
    std::printf("L-BFGS iteration N = 10^5 / N = 10^4: %.2f (linear: 10)\n", per_iteration[100000] / per_iteration[10000]);
  benchmark::Shutdown();
  return 0;
}
