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
  // The title of each section added, in order (for the page's table of contents).
  const std::vector<std::string>& section_titles() const { return section_titles_; }
  const std::string& sections_html() const { return sections_html_; }
  std::string chart_specs_html() const;

 private:
  const RunFolder& run_;
  const ReportOptions& options_;
  Report& report_;
  std::string sections_html_;
  std::vector<std::string> section_titles_;
};

// One section per node that published figures or tables (id node_section_id(ID), title "ID
// (type)"), in run.json's order; knows no node type.
void add_node_sections(Page& page, const std::vector<RunNode>& nodes);
std::string node_section_id(const std::string& node_id);

}  // namespace caulk::report
