// Internal to the report builder: the page being assembled, and reading run.json's pieces.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "reports/algorithms/report_builder.hpp"

namespace caulk::report {

// A node of run.json, in file order.
struct RunNode {
  std::string id, type, status;
  const Json* json = nullptr;
  const Json& summary() const;
  // The table published on `port`, or null.
  const Json* table(const std::string& port) const;
};
std::vector<RunNode> run_nodes(const Json& run);

// A table of run.json ({title, columns, rows}).
std::optional<std::size_t> column_index(const Json& table, const std::string& name);
std::optional<double> number_at(const Json& row, std::size_t column);
std::string text_at(const Json& row, std::size_t column);

class Page {
 public:
  Page(const RunFolder& run, const ReportOptions& options, Report& report) : run_(run), options_(options), report_(report) {}
  const RunFolder& run() const { return run_; }
  const ReportOptions& options() const { return options_; }
  Report& report() { return report_; }
  // The chart's element (and its spec, kept for the script at the end of the page).
  std::string chart(const Json& spec);
  // A PNG the run wrote, inline, with its own Title and Description (tEXt) as text; a note when
  // the file is missing.
  std::string image(const std::filesystem::path& relative_to_run);
  void add_section(const std::string& id, const std::string& title, const std::string& body);
  const std::string& sections_html() const { return sections_html_; }
  std::string chart_specs_html() const;

 private:
  const RunFolder& run_;
  const ReportOptions& options_;
  Report& report_;
  std::string sections_html_;
};

// The sections that read the domain's summaries and tables; each adds nothing when the run has
// none of its nodes.
void add_ranking_section(Page& page, const std::vector<RunNode>& nodes);
void add_learning_curve_section(Page& page, const std::vector<RunNode>& nodes);
void add_evaluation_section(Page& page, const std::vector<RunNode>& nodes);
void add_merge_section(Page& page, const std::vector<RunNode>& nodes);
void add_averaging_section(Page& page, const std::vector<RunNode>& nodes);
// Every table of the run.
void add_tables_section(Page& page, const std::vector<RunNode>& nodes);

}  // namespace caulk::report
