// rank.gbc, rank.sfda, rank.parc, rank.nleep: metrics that model the classes (per-class
// Gaussians, a discriminant, pairwise similarities, a mixture).
#include "rankers/algorithms/transferability.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

class GbcNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<GbcNode>("rank.gbc",
                                      "Rank models by GBC, minus the total Bhattacharyya overlap of per-class Gaussians "
                                      "(Pandy et al. 2022)");
    s.param(ParamSpec::choice("gaussian", "diagonal", {"diagonal", "spherical"},
                              "per-class covariance: one variance per dimension, or their mean"));
    return s;
  }

 protected:
  std::string method() const override { return "gbc"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::gbc_memory(s.rows, s.cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    const auto kind = params.string("gaussian") == "spherical" ? rank::GaussianKind::Spherical : rank::GaussianKind::Diagonal;
    return {rank::gbc(in.stats, in.split.classes, in.data.num_classes(), kind), {}, {}};
  }
};

class SfdaNode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec<SfdaNode>("rank.sfda",
                                 "Rank models by SFDA, the accuracy-like score of a regularised Fisher discriminant refitted "
                                 "on self-challenged features (Shao et al. 2022)");
  }

 protected:
  std::string method() const override { return "sfda"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::sfda_memory(s.rows, s.cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params&) override {
    return {rank::sfda(in.stats, in.split.classes, in.data.num_classes()), {}, {}};
  }
};

class ParcNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<ParcNode>("rank.parc",
                                       "Rank models by PARC, 100 x the Spearman correlation of pairwise sample dissimilarities "
                                       "of features and labels (Bolya et al. 2021)");
    s.param(ParamSpec::integer("pca_dims", 32, "principal components kept (all columns when there are fewer)").range(1, 1 << 20));
    s.param(ParamSpec::integer("max_samples", 5000, "rows used for the N x N dissimilarities (a seeded subsample)").range(2, 1 << 20));
    s.param(ParamSpec::integer("seed", 0, "seed of the row subsample").range(0, 9007199254740991.0));
    return s;
  }

 protected:
  std::string method() const override { return "parc"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params& params) const override {
    return rank::parc_memory(s.rows, s.cols, s.targets, static_cast<std::size_t>(params.integer("pca_dims")),
                             static_cast<std::size_t>(params.integer("max_samples")));
  }
  void describe_run(const Params& params, Json& summary) const override {
    summary["max_samples"] = params.integer("max_samples");
    summary["seed"] = params.integer("seed");
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    const rank::ParcResult r =
        rank::parc(in.stats, in.split.classes, in.data.num_classes(), static_cast<int>(params.integer("pca_dims")),
                   static_cast<std::size_t>(params.integer("max_samples")), static_cast<std::uint64_t>(params.integer("seed")));
    return {r.score, {}, Json{{"samples", r.samples}, {"dims", r.dims}}};
  }
};

class NLeepNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<NLeepNode>("rank.nleep",
                                        "Rank models by N-LEEP: LEEP (with the log) on the posterior of a Gaussian mixture fitted "
                                        "to PCA-reduced features (Li et al. 2021)");
    s.param(
        ParamSpec::real("variance_kept", 0.8, "PCA keeps the fewest components explaining more than this variance ratio").range(1e-6, 1));
    s.param(ParamSpec::integer("components_per_class", 5, "mixture components per target class").range(1, 1000));
    s.param(ParamSpec::integer("max_iterations", 100, "EM iterations at most").range(1, 100000));
    s.param(ParamSpec::real("tolerance", 1e-3, "EM stops when the mean log-likelihood changes by less").range(0, 1e6));
    s.param(ParamSpec::real("reg_covar", 1e-6, "ridge added to every component's covariance").range(0, 1e6));
    s.param(ParamSpec::integer("seed", 0, "seed of the k-means++ initialisation").range(0, 9007199254740991.0));
    return s;
  }

 protected:
  std::string method() const override { return "nleep"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params& params) const override {
    return rank::nleep_memory(s.rows, s.cols, s.targets, static_cast<std::size_t>(params.integer("components_per_class")), s.width);
  }
  void describe_run(const Params& params, Json& summary) const override { summary["seed"] = params.integer("seed"); }
  RankerResult score(const RankerInput& in, const Params& params) override {
    rank::NLeepOptions o;
    o.variance_kept = params.real("variance_kept");
    o.components_per_class = static_cast<int>(params.integer("components_per_class"));
    o.max_iterations = static_cast<int>(params.integer("max_iterations"));
    o.tolerance = params.real("tolerance");
    o.reg_covar = params.real("reg_covar");
    o.seed = static_cast<std::uint64_t>(params.integer("seed"));
    o.check_memory = [&in](std::size_t bytes, const std::string& what) {
      in.check_memory(bytes, what, "Lower components_per_class or variance_kept, or reduce the features first.");
    };
    const rank::NLeepResult r = rank::nleep(in.stats, in.split.classes, in.data.num_classes(), o);
    return {r.score,
            {},
            Json{{"pca_dims", r.pca_dims}, {"components", r.components}, {"em_iterations", r.em_iterations}, {"converged", r.converged}}};
  }
};

}  // namespace

void register_class_model_rankers(PluginRegistrar& r) {
  r.add_node<GbcNode>();
  r.add_node<SfdaNode>();
  r.add_node<ParcNode>();
  r.add_node<NLeepNode>();
}

}  // namespace caulk::rankers
