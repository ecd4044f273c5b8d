// The element-wise merge nodes: merge.linear, merge.task_arithmetic, merge.ties, merge.dare,
// merge.slerp, merge.fisher. Each reads its parameters, builds the method and runs the engine.
#include <fmt/format.h>

#include "mergers/algorithms/merge_methods.hpp"
#include "mergers/src/merge_node_support.hpp"
#include "mergers/src/nodes.hpp"

namespace caulk::mergers {

namespace {

constexpr double kBig = 1e6;

// The parameters as written, for the output's metadata (a record of how it was made).
std::map<std::string, std::string> recorded(const Params& p, std::initializer_list<const char*> names) {
  std::map<std::string, std::string> out;
  for (const char* n : names)
    if (p.has(n)) out[std::string("merge_") + n] = p.get(n).to_toml();
  return out;
}

class LinearNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.linear", "Weighted average of checkpoints (the uniform soup by default): sum_i w_i theta_i / sum_i w_i");
    declare_merge_node(s);
    declare_weights(s, "w_i of each model");
    s.param(ParamSpec::flag("normalize", true, "divide by the sum of the weights (false: the plain weighted sum)"));
    return s;
  }
  void run(NodeContext& ctx) override {
    run_and_publish(ctx, collect_models(ctx, false), {&build}, recorded(ctx.params(), {"weights", "normalize"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>& models) {
    return std::make_unique<merge::LinearMerge>(read_weights(p, "weights", models, 1.0, -kBig, kBig), p.flag("normalize"));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

class TaskArithmeticNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.task_arithmetic", "Task arithmetic: theta_0 + lambda sum_i w_i (theta_i - theta_0), with the base theta_0");
    declare_merge_node(s);
    declare_weights(s, "w_i of each task vector");
    declare_tensor_param(s, "lambda", 1.0, -kBig, kBig, "scale of the summed task vectors");
    s.param(ParamSpec::flag("normalize", false, "divide the sum of task vectors by the sum of the weights"));
    return s;
  }
  void run(NodeContext& ctx) override {
    run_and_publish(ctx, collect_models(ctx, true), {&build}, recorded(ctx.params(), {"weights", "lambda", "normalize"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>& models) {
    return std::make_unique<merge::TaskArithmeticMerge>(read_weights(p, "weights", models, 1.0, -kBig, kBig),
                                                        read_tensor_param(p, "lambda", 1.0, -kBig, kBig), p.flag("normalize"));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

class TiesNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.ties",
               "TIES: trim each task vector to its largest entries, elect a sign per entry, average the agreeing entries; "
               "theta_0 + lambda * that");
    declare_merge_node(s);
    declare_weights(s, "w_i of each task vector (in the sign vote and the average)");
    declare_tensor_param(s, "density", 0.2, 0, 1, "fraction of each task vector's entries kept (largest magnitudes)");
    declare_tensor_param(s, "lambda", 1.0, -kBig, kBig, "scale of the merged task vector");
    s.param(ParamSpec::flag("normalize", true,
                            "divide the sum of the agreeing entries by their weights (the disjoint mean; mergekit's ties default); "
                            "false: their weighted sum"));
    return s;
  }
  void run(NodeContext& ctx) override {
    run_and_publish(ctx, collect_models(ctx, true), {&build}, recorded(ctx.params(), {"weights", "density", "lambda", "normalize"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>& models) {
    return std::make_unique<merge::TiesMerge>(read_weights(p, "weights", models, 1.0, 0, kBig), read_tensor_param(p, "density", 0.2, 0, 1),
                                              read_tensor_param(p, "lambda", 1.0, -kBig, kBig), p.flag("normalize"));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

class DareNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.dare",
               "DARE: drop task-vector entries at random (keeping a fraction `density`), rescale the kept ones by 1/density, then "
               "task arithmetic or TIES; seeded");
    declare_merge_node(s);
    declare_weights(s, "w_i of each task vector");
    declare_tensor_param(s, "density", 0.5, 1e-6, 1, "probability of keeping each entry (1 - the drop rate p)");
    declare_tensor_param(s, "lambda", 1.0, -kBig, kBig, "scale of the merged task vector");
    s.param(ParamSpec::choice("combine", "linear", {"linear", "ties"},
                              "after the drop: linear (task arithmetic) or ties (sign election and disjoint mean)"));
    s.param(ParamSpec::flag(
        "normalize", false,
        "divide the merged sum by its weights: linear, all of them; ties, those of the agreeing entries (the disjoint mean). "
        "false, as mergekit's dare_linear and dare_ties: the weighted sum"));
    s.param(ParamSpec::integer("seed", 0, "seed of the random drops").at_least(0));
    return s;
  }
  void run(NodeContext& ctx) override {
    run_and_publish(ctx, collect_models(ctx, true), {&build},
                    recorded(ctx.params(), {"weights", "density", "lambda", "combine", "normalize", "seed"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>& models) {
    const bool ties = p.string("combine") == "ties";
    return std::make_unique<merge::DareMerge>(
        read_weights(p, "weights", models, 1.0, ties ? 0 : -kBig, kBig), read_tensor_param(p, "density", 0.5, 1e-6, 1),
        read_tensor_param(p, "lambda", 1.0, -kBig, kBig), ties ? merge::DareMerge::Combine::Ties : merge::DareMerge::Combine::Linear,
        p.flag("normalize"), static_cast<std::uint64_t>(p.integer("seed")));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

class SlerpNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.slerp",
               "SLERP of two models per tensor at t (t = 0: the first, t = 1: the second), linear when the tensors are nearly parallel");
    declare_merge_node(s);
    declare_tensor_param(s, "t", 0.5, 0, 1, "interpolation position");
    return s;
  }
  void run(NodeContext& ctx) override {
    const MergeJob job = collect_models(ctx, false);
    if (job.models.size() != 2) throw Error(fmt::format("merge.slerp interpolates exactly two models; got {}", job.models.size()));
    run_and_publish(ctx, job, {&build}, recorded(ctx.params(), {"t"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>&) {
    return std::make_unique<merge::SlerpMerge>(read_tensor_param(p, "t", 0.5, 0, 1));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

class FisherNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.fisher",
               "Fisher merging: sum_i lambda_i F_i theta_i / sum_i lambda_i F_i element-wise, with each model's diagonal Fisher "
               "(from analysis.fisher, or `fisher = \"...\"` in a checkpoint manifest)");
    declare_merge_node(s);
    declare_weights(s, "lambda_i of each model");
    declare_fisher_params(s, "");
    return s;
  }
  void run(NodeContext& ctx) override {
    run_and_publish(ctx, collect_models(ctx, false), {&build},
                    recorded(ctx.params(), {"weights", "floor", "floor_mode", "normalize_fisher"}));
  }
  static std::unique_ptr<merge::MergeMethod> build(const Params& p, const Json&, const std::vector<merge::MergeModel>& models) {
    return fisher_method(p, read_weights(p, "weights", models, 1.0, 0, kBig));
  }
  // One output file of the merge, on any rank (merge_distribution.cpp).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return merge_file_unit(ctx, payload, &build); }
};

}  // namespace

void register_merge_nodes(PluginRegistrar& r) {
  r.add_node<LinearNode>();
  r.add_node<TaskArithmeticNode>();
  r.add_node<TiesNode>();
  r.add_node<DareNode>();
  r.add_node<SlerpNode>();
  r.add_node<FisherNode>();
}

}  // namespace caulk::mergers
