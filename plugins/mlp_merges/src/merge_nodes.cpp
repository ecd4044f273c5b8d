// merge.regmean and merge.greedy_soup: the merges that need data, each writing one merged
// checkpoint (named after the node) that chains into any Checkpoint consumer. RegMean takes caulk
// MLPs; the greedy soup also TorchScript models (interface_soup.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "caulk/data_check.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/units.hpp"
#include "mlp_merges/algorithms/greedy_soup.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"
#include "mlp_merges/algorithms/regmean.hpp"
#include "mlp_merges/src/common.hpp"
#include "mlp_merges/src/interface_soup.hpp"
#include "mlp_merges/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp_merges {

namespace {

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::string check_string_table(const Value& v) {
  for (const auto& [key, value] : v.as_table())
    if (!value.is_string()) return fmt::format("model '{}' maps to a {}, expected a split name", key, value.kind_name());
  return "";
}

// Publishes the merged model as a one-model Checkpoint named after the node.
// A TorchScript soup is `module` with the merged weights in `file`.
void publish_merged(NodeContext& ctx, const fs::path& file, const fs::path& module = {}, const std::string& feature_method = {}) {
  auto out = std::make_shared<Checkpoint>();
  CheckpointRef merged;
  merged.model = merged_name(ctx);
  merged.path = file;
  merged.module = module;
  merged.feature_method = feature_method;
  out->models.push_back(std::move(merged));
  // Relative to the run's folder when inside it, so run.json does not depend on where OUT is.
  std::error_code ec;
  const fs::path rel = fs::relative(file, ctx.out_dir(), ec);
  const bool inside = !ec && !rel.empty() && *rel.begin() != "..";
  ctx.summary()["output"] = (inside ? rel : file).generic_string();
  ctx.publish("checkpoints", std::move(out));
}

// One model's input Gram matrices on its own data, on any rank: the checkpoint (LoRA folded, as
// load_checkpoints loads it) run on the seeded subsample of the model's split that rank 0 takes
// (the same `subsample`); every Gram matrix comes back exactly, with the sample count.
Json regmean_grams_unit(UnitContext& ctx, const Json& d) {
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const mlp::Samples s = subsample(split_samples(*data, d.at("split").get<std::string>()),
                                   static_cast<std::size_t>(p.integer("max_samples")), static_cast<std::uint64_t>(p.integer("seed")));
  const InputGrams g = input_grams(load_checkpoint(d.at("checkpoint").get<std::string>(), true), s.X);
  Json grams = Json::object();
  for (const auto& [tensor, G] : g.gram) grams[tensor] = matrix_to_json(G);
  return Json{{"samples", g.samples}, {"grams", std::move(grams)}};
}

InputGrams input_grams_from_json(const Json& j) {
  InputGrams g;
  g.samples = j.at("samples").get<long>();
  for (const auto& [tensor, G] : j.at("grams").items()) g.gram[tensor] = matrix_from_json(G);
  return g;
}

class RegMeanNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.regmean",
               "RegMean for native MLP checkpoints: each linear weight W = (sum_i G_i)^-1 sum_i G_i W_i from the Gram matrices G_i of "
               "its inputs as model i computes them on its own data (off-diagonals shrunk by alpha); everything else averaged");
    declare_checkpoints(s, "the models to merge (one architecture; LoRA is folded into its layers first)");
    s.input("data", "Dataset", "the task whose model inputs give each model's data");
    s.output("checkpoints", "Checkpoint", "the merged model (one checkpoint named after `name`)");
    s.param(ParamSpec::real("alpha", 0.9, "Gram shrinkage: G <- alpha G + (1 - alpha) diag(G) (1: no shrinkage)").range(0, 1));
    s.param(ParamSpec::string("split", "train", "each model's data: this split's inputs (unless `model_splits` names another)"));
    s.param(
        ParamSpec::table("model_splits", "per-model splits, { model = \"split\" }; the others use `split`").validate(check_string_table));
    s.param(ParamSpec::integer("max_samples", 0, "use a seeded subsample of this many samples per model (0: all)").at_least(0));
    s.param(ParamSpec::integer("seed", 0, "seed of the subsample").at_least(0));
    s.param(
        ParamSpec::choice("gram", "sum", {"sum", "mean"},
                          "G_i = X_i^T X_i (sum, as the method defines it) or X_i^T X_i / N_i (mean, as the reference implementations)"));
    s.param(ParamSpec::real("jitter", 1e-8,
                            "when sum_i G_i is singular, regularise towards the plain average with lambda = jitter * mean(diag); 0: fail")
                .at_least(0));
    declare_merge_output(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const fs::path output = merge_output_path(ctx);
    const auto data = ctx.input<Dataset>("data");
    LoadedModels in = load_checkpoints(ctx, true);
    check_same_architecture(in.models, in.names);

    std::map<std::string, std::string> split_of;
    if (p.has("model_splits"))
      for (const auto& [model, split] : p.get("model_splits").as_table()) {
        if (std::find(in.names.begin(), in.names.end(), model) == in.names.end())
          throw Error(fmt::format("{}: `model_splits` names model '{}', which is not among the checkpoints ({}){}", split.where().str(),
                                  model, list_names(in.names), did_you_mean_among(model, in.names)));
        split_of[model] = split.as_string();
      }
    // Each model's data, by split, loaded once: checked here before any unit starts; each unit
    // takes the same subsample again on its own rank.
    std::map<std::string, mlp::Samples> samples;
    std::vector<std::string> model_split(in.names.size());
    for (std::size_t i = 0; i < in.names.size(); ++i) {
      model_split[i] = split_of.count(in.names[i]) ? split_of[in.names[i]] : p.string("split");
      if (!samples.count(model_split[i])) {
        mlp::Samples s = split_samples(*data, model_split[i]);
        samples[model_split[i]] =
            subsample(s, static_cast<std::size_t>(p.integer("max_samples")), static_cast<std::uint64_t>(p.integer("seed")));
      }
      if (samples[model_split[i]].size() == 0) throw Error(fmt::format("split '{}' has no samples", model_split[i]));
      check_fits(in.models[i], in.names[i], *data, static_cast<long>(samples[model_split[i]].X.rows()));
    }

    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < in.names.size(); ++i)
      descriptions.push_back(Json{{"model", in.names[i]}, {"checkpoint", in.refs[i].path.string()}, {"split", model_split[i]}});
    std::vector<InputGrams> grams;
    for (const Json& r : ctx.run_units("model", in.names, descriptions)) grams.push_back(input_grams_from_json(r));
    RegMeanOptions o;
    o.alpha = p.real("alpha");
    o.mean_gram = p.string("gram") == "mean";
    o.jitter = p.real("jitter");
    const RegMeanResult r = regmean_merge(in.models, grams, o);

    fs::create_directories(output.parent_path());
    mlp::save_model(output, r.model,
                    marked_output({{"merge", "regmean"},
                                   {"alpha", fmt::format("{}", o.alpha)},
                                   {"gram", p.string("gram")},
                                   {"ingredients", list_names(in.names)}}),
                    merge_output_rule(ctx));
    Json& sum = ctx.summary();
    Json models = Json::object();
    for (std::size_t i = 0; i < in.names.size(); ++i) models[in.names[i]] = Json{{"split", model_split[i]}, {"samples", grams[i].samples}};
    sum["models"] = models;
    sum["alpha"] = o.alpha;
    sum["regmean_tensors"] = r.merged;
    sum["regularised_tensors"] = r.regularised;
    if (!r.regularised.empty())
      ctx.log(fmt::format("singular Gram matrices regularised towards the average (jitter {}): {}", o.jitter, list_names(r.regularised)));
    publish_merged(ctx, output);
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return regmean_grams_unit(ctx, payload); }
};

// One ingredient's own held-out score, on any rank: the checkpoint (LoRA folded, as
// load_checkpoints loads it) judged on the split; the score comes back.
Json soup_ingredient_unit(UnitContext& ctx, const Json& d) {
  const auto data = ctx.dataset("data");
  const mlp::Samples held_out = split_samples(*data, ctx.params().string("split"));
  const mlp::Model<float> m = load_checkpoint(d.at("checkpoint").get<std::string>(), true);
  return Json{{"score", model_metric(m, held_out, parse_soup_metric(d.at("metric").get<std::string>()))}};
}

class GreedySoupNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("merge.greedy_soup",
               "Greedy soup of models (MLP checkpoints, TorchScript modules with their weights): ingredients best first by a held-out "
               "metric; each is kept only if the uniform "
               "average of the soup plus it scores strictly better on the held-out split");
    declare_checkpoints(s, "the ingredients (one architecture, e.g. fine-tuned copies of one model)");
    s.input("data", "Dataset", "the task holding the held-out split");
    s.output("checkpoints", "Checkpoint", "the soup (one checkpoint named after `name`)");
    s.output("ingredients", "Table", "the ingredients as tried, best first: own score, the soup's score with it, kept or not");
    s.param(ParamSpec::choice("metric", "auto", {"auto", "accuracy", "log_loss", "mse"},
                              "held-out metric: accuracy or log_loss for classification, mse for regression (auto: accuracy or mse)"));
    s.param(ParamSpec::string("split", "val", "the held-out split the soup is judged on"));
    s.data_check = [](DataCheck& check) { check.expect_split("split", "data"); };  // caulk/data_check.hpp
    declare_merge_output(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const fs::path output = merge_output_path(ctx);
    const auto data = ctx.input<Dataset>("data");
    const LoadedModels listed = list_checkpoints(ctx, 1, true);
    const bool torchscript = std::any_of(listed.refs.begin(), listed.refs.end(), [](const CheckpointRef& r) { return !r.module.empty(); });
    std::string metric_name = p.string("metric");
    if (metric_name == "auto") metric_name = data->kind == TaskKind::Classification ? "accuracy" : "mse";
    GreedySoupSteps r;
    std::vector<std::string> names;
    CheckpointRef soup;
    const auto metadata = [&](const std::vector<std::size_t>& order, const std::vector<bool>& kept) {
      std::vector<std::string> chosen;
      for (std::size_t i : order)
        if (kept[i]) chosen.push_back(listed.names[i]);
      return std::map<std::string, std::string>{
          {"merge", "greedy_soup"}, {"metric", metric_name}, {"split", p.string("split")}, {"ingredients", list_names(chosen)}};
    };
    if (torchscript) {
      const SoupMetric metric = parse_soup_metric(metric_name);
      if ((metric == SoupMetric::Mse) != (data->kind == TaskKind::Regression))
        throw Error(fmt::format("metric {} does not judge a {} task (classification: accuracy, log_loss; regression: mse)", metric_name,
                                task_kind_name(data->kind)));
      InterfaceSoup s = interface_greedy_soup(ctx, listed, *data, p.string("split"), metric);
      fs::create_directories(output.parent_path());
      io::write_safetensors(output, s.tensors, marked_output(metadata(s.steps.order, s.steps.kept)), merge_output_rule(ctx));
      r = std::move(s.steps);
      names = listed.names;
      soup.module = s.module;
      soup.feature_method = s.feature_method;
    } else {
      const LoadedModels in = load_checkpoints(ctx, true);
      names = in.names;
      const GreedySoupResult g = mlp_greedy_soup(ctx, in, *data, metric_name);
      r.order = g.order;
      r.individual = g.individual;
      r.candidate = g.candidate;
      r.kept = g.kept;
      r.score = g.score;
      fs::create_directories(output.parent_path());
      mlp::save_model(output, g.soup, marked_output(metadata(g.order, g.kept)), merge_output_rule(ctx));
    }
    std::vector<std::string> kept;
    for (std::size_t i : r.order)
      if (r.kept[i]) kept.push_back(names[i]);
    const auto& in = listed;

    // The ingredients as tried: a table on stdout, a CSV beside the soup, and run.json.
    auto table_ptr = std::make_shared<Table>();
    Table& table = *table_ptr;
    table.title = fmt::format("Greedy soup on split '{}' ({}, {} is better)", p.string("split"), metric_name,
                              higher_is_better(parse_soup_metric(metric_name)) ? "higher" : "lower");
    table.columns = {"step", "ingredient", "own_" + metric_name, "soup_with_it", "kept"};
    Json ingredients = Json::array();
    for (std::size_t k = 0; k < r.order.size(); ++k) {
      const std::size_t i = r.order[k];
      table.rows.push_back(
          {static_cast<long long>(k + 1), in.names[i], r.individual[i], r.candidate[i], std::string(r.kept[i] ? "yes" : "no")});
      ingredients.push_back(
          Json{{"model", in.names[i]}, {"score", r.individual[i]}, {"soup_score", r.candidate[i]}, {"kept", bool(r.kept[i])}});
    }
    io::write_file_atomic(ctx.out_dir() / ctx.id() / "ingredients.csv", table.to_csv());
    ctx.print(table.to_text());
    Json& sum = ctx.summary();
    sum["metric"] = metric_name;
    sum["split"] = p.string("split");
    sum["ingredients"] = ingredients;
    sum["kept"] = kept;
    sum["score"] = r.score;
    ctx.publish("ingredients", std::move(table_ptr));
    publish_merged(ctx, output, soup.module, soup.feature_method);
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return soup_ingredient_unit(ctx, payload); }

 private:
  // The MLP soup: the ingredients' own scores are units; the greedy loop, each step scoring the
  // soup the previous steps left, runs here.
  static GreedySoupResult mlp_greedy_soup(NodeContext& ctx, const LoadedModels& in, const Dataset& data, const std::string& metric_name) {
    const Params& p = ctx.params();
    check_same_architecture(in.models, in.names);
    const mlp::Samples held_out = split_samples(data, p.string("split"));
    if (held_out.size() == 0) throw Error(fmt::format("split '{}' has no samples", p.string("split")));
    for (std::size_t i = 0; i < in.models.size(); ++i) check_fits(in.models[i], in.names[i], data, static_cast<long>(held_out.X.rows()));
    const SoupMetric metric = parse_soup_metric(metric_name);
    if ((metric == SoupMetric::Mse) != (data.kind == TaskKind::Regression))
      throw Error(fmt::format("metric {} does not judge a {} task (classification: accuracy, log_loss; regression: mse)", metric_name,
                              task_kind_name(data.kind)));
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < in.names.size(); ++i)
      descriptions.push_back(Json{{"model", in.names[i]}, {"checkpoint", in.refs[i].path.string()}, {"metric", metric_name}});
    std::vector<double> individual;
    for (const Json& r : ctx.run_units("model", in.names, descriptions)) individual.push_back(r.at("score").get<double>());
    return greedy_soup(
        in.models, individual, [&](const mlp::Model<float>& m) { return model_metric(m, held_out, metric); }, higher_is_better(metric));
  }
};

}  // namespace

void register_merges(PluginRegistrar& r) {
  r.add_node<RegMeanNode>();
  r.add_node<GreedySoupNode>();
}

}  // namespace caulk::mlp_merges
