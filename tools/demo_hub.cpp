// Writes the embedded demo hub (pipelines/demo/) deterministically.
//
// A 4-class target task whose samples come from a latent z = mu_y + noise (8 dimensions). Each
// "pre-trained model" sees the task through its own random linear view of z plus noise of its
// own level, so the models differ exactly in how well their features support the task:
//   sharp-large (noise 0.3) > sharp-small (0.6) > blurry (1.2) > noisy (2.5) > random (no signal).
// Each model also has a 10-class "source head" (softmax of a random map of its features), for the
// rankers that need source-class probabilities.
//
// ground_truth.csv is what the rankers are judged against: the test accuracy of a linear probe
// (L2 logistic regression, L-BFGS) tuned on each model's train features.
//
// The generator uses its own RNG (xoshiro256**) and Box-Muller, so the bytes do not depend on the
// standard library's distributions; a test regenerates the hub and compares it with the committed
// files. Usage: caulk_demo_hub OUTPUT_DIR
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "caulk/io/atomic_file.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/probe/linear_probe.hpp"

namespace fs = std::filesystem;
using caulk::RowMatrixF;

namespace {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {  // splitmix64 to fill the state
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    std::uint64_t result = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u = 0;
    while (u <= 0) u = uniform();
    double v = uniform(), r = std::sqrt(-2.0 * std::log(u)), a = 2.0 * M_PI * v;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

constexpr int kClasses = 4, kLatent = 8, kSourceClasses = 10;
constexpr int kTrain = 600, kTest = 300;

struct ModelDef {
  const char* name;
  int dim;
  double noise;   // noise level added to the model's view of the latent
  double signal;  // 1 for a model that sees the latent, 0 for one that does not
  const char* description;
};

const ModelDef kModels[] = {
    {"sharp-large", 48, 0.3, 1.0, "sees the task's latent factors clearly (noise 0.3)"},
    {"sharp-small", 24, 0.6, 1.0, "sees them fairly clearly (noise 0.6)"},
    {"blurry", 32, 1.2, 1.0, "sees them through heavy noise (noise 1.2)"},
    {"noisy", 40, 2.5, 1.0, "barely sees them (noise 2.5)"},
    {"random", 32, 1.0, 0.0, "features unrelated to the task (a randomly initialised network)"},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: caulk_demo_hub OUTPUT_DIR\n";
    return 2;
  }
  fs::path out = argv[1];
  Rng rng(20261124);

  // Class means in the latent space, well separated.
  std::vector<std::vector<double>> mu(kClasses, std::vector<double>(kLatent));
  for (auto& m : mu)
    for (auto& x : m) x = 1.5 * rng.normal();

  struct Split {
    const char* name;
    int rows;
    std::vector<int> y;
    std::vector<std::vector<double>> z;
  };
  std::vector<Split> splits{{"train", kTrain, {}, {}}, {"test", kTest, {}, {}}};
  for (auto& s : splits) {
    for (int i = 0; i < s.rows; ++i) {
      int c = rng.below(kClasses);
      std::vector<double> z(kLatent);
      for (int k = 0; k < kLatent; ++k) z[k] = mu[c][k] + rng.normal();
      s.y.push_back(c);
      s.z.push_back(std::move(z));
    }
    std::vector<std::int64_t> labels(s.y.begin(), s.y.end());
    caulk::io::write_npy(out / fmt::format("labels_{}.npy", s.name), labels);
  }

  std::string manifest =
      "# The embedded demo hub, written by tools/demo_hub.cpp (`caulk_demo_hub pipelines/demo`).\n"
      "[hub]\nname = \"demo\"\n"
      "description = \"Five models whose features support the demo task from very well to not at all\"\n";
  std::string ground_truth = "model,accuracy\n";
  std::vector<int> train_labels(splits[0].y.begin(), splits[0].y.end()), test_labels(splits[1].y.begin(), splits[1].y.end());
  for (const auto& def : kModels) {
    // The model's view of the latent, and its source head.
    std::vector<double> view(static_cast<std::size_t>(def.dim) * kLatent), head(static_cast<std::size_t>(kSourceClasses) * def.dim);
    for (auto& a : view) a = rng.normal() / std::sqrt(double(kLatent));
    for (auto& h : head) h = rng.normal() / std::sqrt(double(def.dim));
    std::map<std::string, RowMatrixF> features_of;
    for (auto& s : splits) {
      RowMatrixF f(s.rows, def.dim), p(s.rows, kSourceClasses);
      for (int i = 0; i < s.rows; ++i) {
        for (int d = 0; d < def.dim; ++d) {
          double v = 0;
          for (int k = 0; k < kLatent; ++k) v += view[static_cast<std::size_t>(d) * kLatent + k] * s.z[i][k];
          f(i, d) = static_cast<float>(def.signal * v + def.noise * rng.normal());
        }
        double logits[kSourceClasses], top = -1e300, total = 0;
        for (int c = 0; c < kSourceClasses; ++c) {
          logits[c] = 0;
          for (int d = 0; d < def.dim; ++d) logits[c] += 2.0 * head[static_cast<std::size_t>(c) * def.dim + d] * f(i, d);
          top = std::max(top, logits[c]);
        }
        for (double& l : logits) total += (l = std::exp(l - top));
        for (int c = 0; c < kSourceClasses; ++c) p(i, c) = static_cast<float>(logits[c] / total);
      }
      caulk::io::write_npy(out / "features" / fmt::format("{}_{}.npy", def.name, s.name), f);
      features_of[s.name] = f;
      caulk::io::write_npy(out / "source_probs" / fmt::format("{}_{}.npy", def.name, s.name), p);
    }
    manifest += fmt::format(
        "\n[[model]]\nname = \"{0}\"\ndescription = \"{1}\"\n"
        "features = {{ train = \"features/{0}_train.npy\", test = \"features/{0}_test.npy\" }}\n"
        "source_probs = {{ train = \"source_probs/{0}_train.npy\", test = \"source_probs/{0}_test.npy\" }}\n",
        def.name, def.description);
    const auto probe = caulk::probe::fit_linear_probe(caulk::MatrixView::borrow(features_of["train"]), train_labels, kClasses);
    const double accuracy = probe.accuracy(caulk::MatrixView::borrow(features_of["test"]), test_labels);
    ground_truth += fmt::format("{},{:.6f}\n", def.name, accuracy);
  }
  caulk::io::write_file_atomic(out / "ground_truth.csv", ground_truth);
  caulk::io::write_file_atomic(out / "hub.toml", manifest);
  std::cout << "wrote the demo hub to " << out.string() << "\n";
  return 0;
}
