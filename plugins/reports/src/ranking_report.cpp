// report.ranking: the ranking table of one or several rankers, on stdout and as CSV and Markdown.
#include <fmt/format.h>

#include <set>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "reports/src/nodes.hpp"

namespace caulk::reports {

namespace {

class RankingReport : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("report.ranking", "Print a ranking table (rank, model, one column per ranker); write ranking.csv and ranking.md");
    s.inputs_many("scores", "Scores", "one or several rankers' scores; the first one orders the table");
    s.input_optional("ground_truth", "Scores", "the accuracy the models really reached (eval.rank_correlation's ground_truth)");
    s.input_optional("correlations", "Table", "how each ranker agrees with the ground truth, shown under the table");
    s.output("table", "Table", "the ranking table");
    s.param(ParamSpec::integer("digits", 4, "significant digits of scores on stdout and in ranking.md").range(1, 17));
    return s;
  }

  void run(NodeContext& ctx) override {
    auto all = ctx.inputs<Scores>("scores");
    const Scores& first = *all.front();
    std::shared_ptr<const Scores> truth = ctx.has_input("ground_truth") ? ctx.input<Scores>("ground_truth") : nullptr;
    // Every ranker must have scored the same models.
    std::set<std::string> models;
    for (const auto& s : first.scores) models.insert(s.model);
    auto checked = all;
    if (truth) checked.push_back(truth);
    for (const auto& scores : checked) {
      for (const auto& s : scores->scores)
        if (!models.count(s.model))
          throw Error(fmt::format("model '{}' is scored by '{}' but not by '{}'", s.model, scores->producer_node, first.producer_node));
      for (const auto& m : models)
        if (!scores->find(m))
          throw Error(fmt::format("model '{}' is scored by '{}' but not by '{}'", m, first.producer_node, scores->producer_node));
    }

    auto table = std::make_shared<Table>();
    table->title = "Ranking";
    table->columns = {"rank", "model"};
    for (const auto& scores : all) table->columns.push_back(scores->producer_node + (scores->higher_is_better ? "" : " (lower is better)"));
    if (truth) table->columns.push_back("ground truth");
    Json order = Json::array();
    std::size_t rank = 1;
    for (std::size_t i : first.ranking()) {
      const std::string& model = first.scores[i].model;
      std::vector<TableCell> row{static_cast<long long>(rank++), model};
      for (const auto& scores : all) row.emplace_back(scores->find(model)->score);
      if (truth) row.emplace_back(truth->find(model)->score);
      table->rows.push_back(std::move(row));
      order.push_back(model);
    }

    int digits = static_cast<int>(ctx.params().integer("digits"));
    std::string text = table->to_text(digits), markdown = table->to_markdown(digits);
    if (ctx.has_input("correlations")) {
      const Table& correlations = *ctx.input<Table>("correlations");
      text += "\n" + correlations.to_text(digits);
      markdown += "\n" + correlations.to_markdown(digits);
      io::write_file_atomic(ctx.out_dir() / "correlations.csv", correlations.to_csv());
    }
    ctx.print(text);
    io::write_file_atomic(ctx.out_dir() / "ranking.csv", table->to_csv());
    io::write_file_atomic(ctx.out_dir() / "ranking.md", markdown);
    ctx.summary()["ranked_by"] = first.producer_node;
    ctx.summary()["order"] = order;
    ctx.publish("table", std::move(table));
  }
};

}  // namespace

void register_ranking_report(PluginRegistrar& r) { r.add_node<RankingReport>(); }

}  // namespace caulk::reports
