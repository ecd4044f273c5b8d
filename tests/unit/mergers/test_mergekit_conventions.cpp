// What docs/mergers.md says about conventions ("Against mergekit", "merge.fisher"), each checked:
// `normalize` of TIES and DARE by hand and against mergekit's formula run with numpy
// (mergekit_formula.py, /usr/bin/python3); Fisher merging's floor modes and normalisation by hand;
// magnitude ties, the rounding of k, zero votes, SLERP's direction and the nodes' defaults.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;
using ::testing::HasSubstr;

std::vector<TensorParameter> constants(std::vector<double> v) {
  std::vector<TensorParameter> out;
  for (double x : v) out.emplace_back(x);
  return out;
}

// One tensor "t"; the base is 0 unless given, so the models are their task vectors.
struct OneTensor : ::testing::Test {
  caulk::testing::TempDir dir;
  int n = 0;
  std::vector<double> merge(MergeMethod& method, const std::vector<std::vector<double>>& models, std::vector<double> base = {},
                            MergeOptions o = {}) {
    const std::vector<Shape> shape{{"t", {models[0].size()}}};
    if (base.empty()) base.assign(models[0].size(), 0.0);
    const std::string run = numbered("r", ++n);
    write_checkpoint(dir / (run + "-base.safetensors"), {{"t", base}}, DType::F64, shape);
    std::vector<MergeModel> in;
    for (std::size_t i = 0; i < models.size(); ++i) {
      const fs::path p = dir / (run + numbered("-m", i) + ".safetensors");
      write_checkpoint(p, {{"t", models[i]}}, DType::F64, shape);
      in.push_back({numbered("m", i), p, {}});
    }
    o.precision = Precision::F64;
    const fs::path out = dir / (run + "-out.safetensors");
    run_merge(MergeInputs::open(in, MergeModel{"base", dir / (run + "-base.safetensors"), {}}, false), method, out, o);
    return read_checkpoint(out).at("t");
  }
};

void expect_all_near(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(got[j], want[j], 1e-12 * (1 + std::fabs(want[j]))) << what << ", entry " << j;
}

// Three task vectors, every entry kept (density 1), weights (1, 2, 0.5):
//   entry 0: 1, 3, 2     votes 1 + 6 + 1 = 8 > 0: all agree; sum 8, weights 3.5
//   entry 1: 2, -1, -4   votes 2 - 2 - 2 = -2 < 0: -1 and -4 agree; sum -2 - 2 = -4, weights 2.5
//   entry 2: -1, 1, 2    votes -1 + 2 + 1 = 2 > 0: 1 and 2 agree; sum 2 + 1 = 3, weights 2.5
//   entry 3: 0, 0, 6     votes 3: only 6 agrees (zeros never do); sum 3, weights 0.5
//   entry 4: 2, -1, 0    votes 2 - 2 = 0: a zero sum elects +, 2 agrees; sum 2, weights 1
const std::vector<std::vector<double>> kThree{{1, 2, -1, 0, 2}, {3, -1, 1, 0, -1}, {2, -4, 2, 6, 0}};
const std::vector<double> kThreeWeights{1, 2, 0.5};
const std::vector<double> kSummed{8, -4, 3, 3, 2};
const std::vector<double> kAveraged{8 / 3.5, -4 / 2.5, 3 / 2.5, 3 / 0.5, 2 / 1.0};

TEST_F(OneTensor, TiesNormalizeAveragesOrSumsTheAgreeingEntriesByHand) {
  TiesMerge averaged(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), true);
  expect_all_near(merge(averaged, kThree), kAveraged, "normalize = true");
  TiesMerge summed(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), false);
  expect_all_near(merge(summed, kThree), kSummed, "normalize = false");
  // lambda scales the merged task vector, on a non-zero base.
  TiesMerge scaled(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(0.5), false);
  const std::vector<double> base{10, 20, 30, 40, 50};
  std::vector<std::vector<double>> models = kThree;
  for (auto& m : models)
    for (std::size_t j = 0; j < m.size(); ++j) m[j] += base[j];
  expect_all_near(merge(scaled, models, base), {14, 18, 31.5, 41.5, 51}, "lambda 0.5");
}

TEST_F(OneTensor, DareTiesNormalizeAveragesOrSumsByHand) {
  // density 1 drops nothing and rescales by 1: the same election and sums as TIES above.
  for (std::uint64_t seed : {0, 7}) {
    DareMerge averaged(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), DareMerge::Combine::Ties, true, seed);
    expect_all_near(merge(averaged, kThree), kAveraged, "dare ties, normalize = true");
    DareMerge summed(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), DareMerge::Combine::Ties, false, seed);
    expect_all_near(merge(summed, kThree), kSummed, "dare ties, normalize = false");
  }
  // Linear: the weighted sum 1 a + 2 b + 0.5 c, divided by 3.5 when normalised.
  DareMerge linear(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), DareMerge::Combine::Linear, false, 3);
  expect_all_near(merge(linear, kThree), {8, -2, 2, 3, 0}, "dare linear");
  DareMerge linear_mean(constants(kThreeWeights), TensorParameter(1.0), TensorParameter(1.0), DareMerge::Combine::Linear, true, 3);
  expect_all_near(merge(linear_mean, kThree), {8 / 3.5, -2 / 3.5, 2 / 3.5, 3 / 3.5, 0}, "dare linear normalised");
}

// ------------------------------------------------------------------- against mergekit's formula

struct AgainstMergekit : OneTensor {
  // A case for mergekit_formula.py: the same values in a folder of .npy files.
  fs::path mergekit_case(const std::string& method, const std::vector<double>& base, const std::vector<std::vector<double>>& models,
                         const std::vector<double>& weights, double density, bool normalize, const Matrix* keep = nullptr) {
    const fs::path folder = dir / numbered("mergekit", ++n);
    fs::create_directories(folder);
    Matrix m(static_cast<Eigen::Index>(models.size()), static_cast<Eigen::Index>(base.size()));
    for (std::size_t i = 0; i < models.size(); ++i)
      for (std::size_t j = 0; j < base.size(); ++j) m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = models[i][j];
    io::write_npy(folder / "base.npy", base);
    io::write_npy(folder / "weights.npy", weights);
    io::write_npy(folder / "models.npy", m);
    if (keep) io::write_npy(folder / "keep.npy", *keep);
    dir.write(fs::relative(folder / "case.txt", dir.path()).string(),
              fmt::format("{} {} {}\n", method, density, normalize ? "true" : "false"));
    return folder;
  }
  // Runs mergekit_formula.py on every case folder (one process).
  void run_mergekit(const std::vector<fs::path>& folders) {
    // Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string chains.
    std::string command("/usr/bin/python3 ");
    command.append(caulk::testing::shell_quote((caulk::testing::source_dir() / "tests/unit/mergers/mergekit_formula.py").string()));
    for (const auto& f : folders) command.append(" ").append(caulk::testing::shell_quote(f.string()));
    const auto r = caulk::testing::run_captured(command);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static std::vector<double> merged(const fs::path& folder) {
    const Matrix m = io::NpyArray::open(folder / "merged.npy").matrix().to_double();
    return std::vector<double>(m.data(), m.data() + m.size());
  }
};

TEST_F(AgainstMergekit, TiesDareAndTaskArithmeticMatchItsFormulaForBothNormalizeSettings) {
  // 40 entries: density 0.25 keeps exactly 10 (mergekit truncates k, caulk rounds: equal here).
  const std::size_t size = 40;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  std::vector<double> base(size);
  for (double& b : base) b = normal(rng);
  std::vector<std::vector<double>> models(3, std::vector<double>(size));
  for (auto& m : models)
    for (std::size_t j = 0; j < size; ++j) m[j] = base[j] + 0.1 * normal(rng);
  const std::vector<double> w{1.0, 0.5, 2.0};
  // DARE: mergekit's Bernoulli draws replaced by caulk's documented ones, so both drop the same.
  const double density = 0.6;
  Matrix keep(3, static_cast<Eigen::Index>(size));
  for (int i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < size; ++j)
      keep(i, static_cast<Eigen::Index>(j)) = DareMerge::draw(5, "t", numbered("m", i), j) < density ? 1 : 0;

  std::vector<std::pair<std::string, std::vector<double>>> caulk_merges;
  std::vector<fs::path> cases;
  for (bool normalize : {false, true}) {
    const std::string what = normalize ? ", normalize = true" : ", normalize = false";
    TiesMerge ties(constants(w), TensorParameter(0.25), TensorParameter(1.0), normalize);
    caulk_merges.emplace_back("ties" + what, merge(ties, models, base));
    cases.push_back(mergekit_case("ties", base, models, w, 0.25, normalize));
    DareMerge dare_ties(constants(w), TensorParameter(density), TensorParameter(1.0), DareMerge::Combine::Ties, normalize, 5);
    caulk_merges.emplace_back("dare_ties" + what, merge(dare_ties, models, base));
    cases.push_back(mergekit_case("dare_ties", base, models, w, density, normalize, &keep));
    DareMerge dare_linear(constants(w), TensorParameter(density), TensorParameter(1.0), DareMerge::Combine::Linear, normalize, 5);
    caulk_merges.emplace_back("dare_linear" + what, merge(dare_linear, models, base));
    cases.push_back(mergekit_case("dare_linear", base, models, w, density, normalize, &keep));
    TaskArithmeticMerge task(constants(w), TensorParameter(1.0), normalize);
    caulk_merges.emplace_back("task_arithmetic" + what, merge(task, models, base));
    cases.push_back(mergekit_case("task_arithmetic", base, models, w, 1.0, normalize));
  }
  run_mergekit(cases);
  for (std::size_t c = 0; c < cases.size(); ++c) expect_all_near(caulk_merges[c].second, merged(cases[c]), caulk_merges[c].first);
  // The settings differ where it matters: summed and averaged TIES are not the same merge.
  EXPECT_NE(caulk_merges[0].second, caulk_merges[4].second);
}

TEST_F(AgainstMergekit, SummedDareTiesGrowsWithTheNumberOfAgreeingModels) {
  // Three models with the same task vector d: mergekit's dare_ties default (normalize = false)
  // gives about 3 d (every kept entry agrees), the normalised merge about d.
  const std::size_t size = 4000;
  std::vector<double> d(size);
  for (std::size_t j = 0; j < size; ++j) d[j] = std::sin(0.1 * static_cast<double>(j)) + 0.5;
  const std::vector<std::vector<double>> models(3, d);
  auto slope = [&](bool normalize) {
    DareMerge m(constants({1, 1, 1}), TensorParameter(0.5), TensorParameter(1.0), DareMerge::Combine::Ties, normalize, 11);
    const std::vector<double> got = merge(m, models);
    double xy = 0, xx = 0;
    for (std::size_t j = 0; j < size; ++j) xy += got[j] * d[j], xx += d[j] * d[j];
    return xy / xx;
  };
  // Each entry is kept by a Binomial(3, 1/2) number of models, each worth 2 d: the expected sum
  // is 3 d; the mean is 2 d where any keeps it (7/8 of the entries), so 7/4 d on average.
  EXPECT_NEAR(slope(false), 3.0, 0.1);
  EXPECT_NEAR(slope(true), 1.75, 0.05);
}

// ------------------------------------------------------------------------------ Fisher by hand

TEST_F(OneTensor, FisherFloorModesAndNormalisationByHand) {
  // Two models, three entries, floor 1; F_a = (3, 4, 0), |F_a| = 5; F_b = (6, 8, 0), |F_b| = 10;
  // x_a = (1, 4, 2), x_b = (3, 0, 6).
  const std::vector<Shape> shape{{"t", {3}}};
  write_checkpoint(dir / "a.safetensors", {{"t", {1, 4, 2}}}, DType::F64, shape);
  write_checkpoint(dir / "b.safetensors", {{"t", {3, 0, 6}}}, DType::F64, shape);
  write_checkpoint(dir / "fa.safetensors", {{"t", {3, 4, 0}}}, DType::F64, shape);
  write_checkpoint(dir / "fb.safetensors", {{"t", {6, 8, 0}}}, DType::F64, shape);
  auto fisher = [&](FisherMerge::FloorMode mode, bool normalize) {
    FisherMerge m(constants({1, 1}), 1.0, mode, normalize);
    MergeOptions o;
    o.precision = Precision::F64;
    const fs::path out = dir / (numbered("fisher", ++n) + ".safetensors");
    run_merge(
        MergeInputs::open({{"a", dir / "a.safetensors", dir / "fa.safetensors"}, {"b", dir / "b.safetensors", dir / "fb.safetensors"}},
                          std::nullopt, true),
        m, out, o);
    return read_checkpoint(out).at("t");
  };
  using Mode = FisherMerge::FloorMode;
  // max: F' = (3, 4, 1) and (6, 8, 1): (3 + 18) / 9, (16 + 0) / 12, (2 + 6) / 2.
  expect_all_near(fisher(Mode::Max, false), {21.0 / 9, 16.0 / 12, 4}, "max");
  // max, normalised: coefficients 1/5 and 1/10 make the first two entries' weights equal:
  // (0.6 + 1.8) / 1.2, (3.2 + 0) / 1.6, (0.2 2 + 0.1 6) / 0.3.
  expect_all_near(fisher(Mode::Max, true), {2, 2, 10.0 / 3}, "max, normalised");
  // add: F' = (4, 5, 1) and (7, 9, 1): (4 + 21) / 11, (20 + 0) / 14, (2 + 6) / 2.
  expect_all_near(fisher(Mode::Add, false), {25.0 / 11, 20.0 / 14, 4}, "add");
  // add, normalised (FusionBench): coefficients 1/(5 + 1) and 1/(10 + 1):
  // (4/6 + 21/11) / (4/6 + 7/11) = 85/43; (20/6) / (5/6 + 9/11) = 220/109; (2/6 + 6/11) / (1/6 + 1/11) = 58/17.
  expect_all_near(fisher(Mode::Add, true), {85.0 / 43, 220.0 / 109, 58.0 / 17}, "add, normalised");
}

TEST_F(OneTensor, FisherAddModeMatchesFusionBenchsFormula) {
  // FusionBench's merging_with_fisher_weights, written out: F + eps; coefficients lambda_i times
  // (1 / (|F_i| + eps)) / sum_j (1 / (|F_j| + eps)); sum of coefficient F' theta over sum of
  // coefficient F'. The sum over j is one factor for every entry and cancels.
  const std::size_t size = 25;
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal;
  const std::vector<Shape> shape{{"t", {size}}};
  std::vector<std::vector<double>> x(3), f(3);
  std::vector<MergeModel> models;
  for (int i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < size; ++j) {
      x[i].push_back(normal(rng));
      f[i].push_back(j % 5 == 0 ? 0.0 : std::pow(normal(rng), 2) * (i + 1));
    }
    const fs::path xi = dir / numbered("x", i).append(".safetensors"), fi = dir / numbered("f", i).append(".safetensors");
    write_checkpoint(xi, {{"t", x[i]}}, DType::F64, shape);
    write_checkpoint(fi, {{"t", f[i]}}, DType::F64, shape);
    models.push_back({numbered("m", i), xi, fi});
  }
  const std::vector<double> lambda{0.2, 0.5, 0.3};
  const double eps = 1e-3;
  std::vector<double> inverse_norm(3);
  double inverse_sum = 0;
  for (int i = 0; i < 3; ++i) {
    double s = 0;
    for (double v : f[i]) s += v * v;
    inverse_norm[i] = 1 / (std::sqrt(s) + eps);
    inverse_sum += inverse_norm[i];
  }
  std::vector<double> want(size);
  for (std::size_t j = 0; j < size; ++j) {
    double num = 0, den = 0;
    for (int i = 0; i < 3; ++i) {
      const double c = lambda[i] * inverse_norm[i] / inverse_sum;
      num += c * (f[i][j] + eps) * x[i][j];
      den += c * (f[i][j] + eps);
    }
    want[j] = num / den;
  }
  FisherMerge method(constants(lambda), eps, FisherMerge::FloorMode::Add, true);
  MergeOptions o;
  o.precision = Precision::F64;
  run_merge(MergeInputs::open(models, std::nullopt, true), method, dir / "out.safetensors", o);
  expect_all_near(read_checkpoint(dir / "out.safetensors").at("t"), want, "FusionBench");
}

// ---------------------------------------------------------------- the documented tie-breaking

TEST_F(OneTensor, MagnitudeTiesKeepTheFirstInStorageOrderAcrossChunks) {
  // density 0.5 of 8 entries keeps 4; five entries tie at magnitude 3 for the last three places.
  const std::vector<std::vector<double>> one{{1, -3, 5, 3, 0.5, -3, 3, 3}};
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{1} << 20}) {
    TiesMerge m(constants({1}), TensorParameter(0.5), TensorParameter(1.0));
    MergeOptions o;
    o.chunk_elements = chunk;
    EXPECT_EQ(merge(m, one, {}, o), (std::vector<double>{0, -3, 5, 3, 0, -3, 0, 0})) << "chunk " << chunk;
  }
}

TEST_F(OneTensor, KIsRoundedHalfAwayFromZero) {
  // n = 4: density 0.625 gives 2.5, kept 3 (not 2, as rounding half to even would; mergekit's
  // int() truncates to 2); 0.125 gives 0.5, kept 1; 0.1 gives 0.4, kept 0 (the base itself).
  const std::vector<std::vector<double>> one{{1, 2, 3, 4}};
  for (auto [density, want] : {std::pair{0.625, std::vector<double>{0, 2, 3, 4}}, std::pair{0.125, std::vector<double>{0, 0, 0, 4}},
                               std::pair{0.1, std::vector<double>{0, 0, 0, 0}}}) {
    TiesMerge m(constants({1}), TensorParameter(density), TensorParameter(1.0));
    EXPECT_EQ(merge(m, one), want) << "density " << density;
  }
}

TEST_F(OneTensor, AZeroVoteElectsPlus) {
  // +2 and -2 with equal weights: the vote is 0, + wins: the mean of the agreeing +2 (or its sum).
  TiesMerge mean(constants({1, 1}), TensorParameter(1.0), TensorParameter(1.0), true);
  EXPECT_EQ(merge(mean, {{2, -2}, {-2, 2}}), (std::vector<double>{2, 2}));
  DareMerge sum(constants({1, 1}), TensorParameter(1.0), TensorParameter(1.0), DareMerge::Combine::Ties, false, 0);
  EXPECT_EQ(merge(sum, {{2, -2}, {-2, 2}}), (std::vector<double>{2, 2}));
}

TEST_F(OneTensor, SlerpMeasuresTFromTheFirstModelGiven) {
  const std::vector<Shape> shape{{"t", {3}}};
  write_checkpoint(dir / "a.safetensors", {{"t", {1, 0, 0}}}, DType::F64, shape);
  write_checkpoint(dir / "b.safetensors", {{"t", {0, 2, 0}}}, DType::F64, shape);
  auto slerp = [&](double t, bool a_first) {
    SlerpMerge m{TensorParameter(t)};
    std::vector<MergeModel> in{{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}};
    if (!a_first) std::swap(in[0], in[1]);
    MergeOptions o;
    o.precision = Precision::F64;
    const fs::path out = dir / (numbered("slerp", ++n) + ".safetensors");
    run_merge(MergeInputs::open(in, std::nullopt, false), m, out, o);
    return read_checkpoint(out).at("t");
  };
  EXPECT_EQ(slerp(0, true), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(slerp(0, false), (std::vector<double>{0, 2, 0}));
  // Orthogonal: at t = 1/3 the coefficients are sin(2/3 pi/2) = sqrt(3)/2 on the first model and
  // sin(1/3 pi/2) = 1/2 on the second.
  expect_all_near(slerp(1.0 / 3, true), {std::sqrt(3.0) / 2, 1, 0}, "a first");
  expect_all_near(slerp(1.0 / 3, false), {0.5, std::sqrt(3.0), 0}, "b first");
}

// ---------------------------------------------------------------------- the nodes' defaults

TEST(MergeNodeDefaults, DensityWeightsNormalizeAndTheFirstModelAsDocumented) {
  caulk::testing::TempDir dir;
  const Values raw = random_values(1, 1.0);
  write_checkpoint(dir / "base.safetensors", raw, DType::F32);
  for (int i = 0; i < 3; ++i) write_checkpoint(dir / numbered("m", i).append(".safetensors"), random_values(2 + i, 0.3, &raw), DType::F32);
  dir.write("hub.toml",
            "[hub]\nname = \"t\"\n[[model]]\nname = \"base\"\ncheckpoint = \"base.safetensors\"\nbase = true\n"
            "[[model]]\nname = \"m1\"\ncheckpoint = \"m1.safetensors\"\n[[model]]\nname = \"m0\"\ncheckpoint = \"m0.safetensors\"\n"
            "[[model]]\nname = \"m2\"\ncheckpoint = \"m2.safetensors\"\n");
  std::string nodes =
      "[pipeline]\nname = \"defaults\"\n[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"hub.toml\" }\n";
  auto node = [&](const std::string& id, const std::string& type, const std::string& params) {
    nodes += "[[node]]\nid = \"" + id + "\"\ntype = \"" + type + "\"\ninputs = { checkpoints = \"load\" }\nparams = { output = \"" + id +
             ".safetensors\"" + (params.empty() ? "" : ", " + params) + " }\n";
  };
  const std::string ones = "weights = { m0 = 1, m1 = 1, m2 = 1 }";
  node("ties", "merge.ties", "");
  node("ties_explicit", "merge.ties", "density = 0.2, normalize = true, lambda = 1.0, " + ones);
  node("ties_other", "merge.ties", "density = 0.3");
  node("dare", "merge.dare", "combine = \"ties\"");
  node("dare_explicit", "merge.dare", "combine = \"ties\", density = 0.5, normalize = false, seed = 0, " + ones);
  node("dare_other", "merge.dare", "combine = \"ties\", normalize = true");
  dir.write("p.toml", nodes);
  const auto r = caulk::testing::run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto tensors = [&](const std::string& id) { return read_checkpoint(dir / "out" / (id + ".safetensors")); };
  EXPECT_EQ(tensors("ties"), tensors("ties_explicit"));
  EXPECT_NE(tensors("ties"), tensors("ties_other"));
  EXPECT_EQ(tensors("dare"), tensors("dare_explicit"));
  EXPECT_NE(tensors("dare"), tensors("dare_other"));

  // SLERP: t = 0 is the first model on `checkpoints` (the manifest's order, base left out): m1.
  dir.write("s.toml",
            "[pipeline]\nname = \"s\"\n[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"h2.toml\" }\n"
            "[[node]]\nid = \"s\"\ntype = \"merge.slerp\"\ninputs = { checkpoints = \"load\" }\nparams = { t = 0.0 }\n");
  dir.write("h2.toml",
            "[hub]\nname = \"t\"\n[[model]]\nname = \"base\"\ncheckpoint = \"base.safetensors\"\nbase = true\n"
            "[[model]]\nname = \"m1\"\ncheckpoint = \"m1.safetensors\"\n[[model]]\nname = \"m0\"\ncheckpoint = \"m0.safetensors\"\n");
  const auto s = caulk::testing::run_caulk({"run", (dir / "s.toml").string(), "--out", (dir / "out2").string()});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_THAT(s.err, HasSubstr("'base' is the base; this method uses no base"));
  EXPECT_EQ(read_checkpoint(dir / "out2" / "s" / "s.safetensors"), read_checkpoint(dir / "m1.safetensors"));
}

}  // namespace
}  // namespace caulk::merge
