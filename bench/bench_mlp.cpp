// The MLP runtime against its floor, in the same run (issue 4, docs/performance.md).
//
// A 784-1024-1024-10 ReLU MLP on a batch of 256, float32, on one thread:
//   forward within 1.5 x the sum of its three matrix products alone (Eigen float GEMMs of the
//   same shapes, measured here);
//   one Adam step (forward with the trace, cross-entropy, backward for every parameter, the
//   update) within 3 x that forward time.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>

#include "caulk/mlp/backprop.hpp"
#include "bench_support.hpp"
#include "caulk/mlp/training.hpp"

namespace {

using caulk::mlp::Mat;
constexpr int kBatch = 256;
const std::vector<int> kWidths{784, 1024, 1024, 10};

Mat<float> random(Eigen::Index r, Eigen::Index c, std::uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  Mat<float> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = nd(rng);
  return m;
}

const caulk::mlp::Model<float>& model() {
  static const caulk::mlp::Model<float> m = [] {
    caulk::mlp::Model<float> m;
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l)
      m.layers.push_back(
          {random(kWidths[l + 1], kWidths[l], l, 1.f / std::sqrt(float(kWidths[l]))), random(kWidths[l + 1], 1, 100 + l, 0.1f)});
    m.feature_layer = 1;
    return m;
  }();
  return m;
}

const caulk::mlp::Samples& batch() {
  static const caulk::mlp::Samples s = [] {
    caulk::mlp::Samples s;
    s.X = random(784, kBatch, 7, 1.f);
    for (int i = 0; i < kBatch; ++i) s.y.classes.push_back(i % 10);
    return s;
  }();
  return s;
}

// The floor: the three products W_l H_{l-1} alone, into preallocated outputs.
void BM_Floor_ThreeGemms(benchmark::State& state) {
  const auto& m = model();
  Mat<float> h1(1024, kBatch), h2(1024, kBatch), out(10, kBatch);
  const Mat<float> a1 = random(1024, kBatch, 8, 1.f), a2 = random(1024, kBatch, 9, 1.f);
  for (auto _ : state) {
    h1.noalias() = m.layers[0].W * batch().X;
    h2.noalias() = m.layers[1].W * a1;
    out.noalias() = m.layers[2].W * a2;
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_Forward(benchmark::State& state) {
  for (auto _ : state) {
    Mat<float> p = caulk::mlp::forward(model(), batch().X);
    benchmark::DoNotOptimize(p.data());
  }
}

void BM_AdamStep(benchmark::State& state) {
  caulk::mlp::Model<float> m = model();
  caulk::mlp::TrainOptions o;
  o.optimizer = "adam";
  caulk::mlp::Optimizer opt(m, o);
  const std::vector<bool> all(caulk::mlp::parameters(m).size(), true);
  for (auto _ : state) benchmark::DoNotOptimize(opt.step(m, all, batch(), 1e-4));
}

BENCHMARK(BM_Floor_ThreeGemms)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_Forward)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AdamStep)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  model();
  batch();
  caulk::bench::RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const double floor = reporter.seconds["BM_Floor_ThreeGemms"], forward = reporter.seconds["BM_Forward"],
               adam = reporter.seconds["BM_AdamStep"];
  if (floor > 0 && forward > 0 && adam > 0) {
    std::printf("\nforward %.3f ms, three GEMMs %.3f ms: %.2f x (target <= 1.50): %s\n", forward * 1e3, floor * 1e3, forward / floor,
                forward / floor <= 1.5 ? "MET" : "NOT MET");
    std::printf("Adam step %.3f ms: %.2f x the forward (target <= 3.00): %s\n", adam * 1e3, adam / forward,
                adam / forward <= 3.0 ? "MET" : "NOT MET");
  }
  benchmark::Shutdown();
  return 0;
}
