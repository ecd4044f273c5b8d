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
  // Adds a section after those added so far; reserve_section keeps the place of one made later
  // (fill_section), so sections can be made in any order and still appear in the page's order.
  void add_section(const std::string& id, const std::string& title, const std::string& body);
  std::size_t reserve_section();
  void fill_section(std::size_t place, const std::string& id, const std::string& title, const std::string& body);
  // The ids and titles of the sections, in page order (a place never filled is left out).
  std::vector<std::string> section_ids() const;
  std::vector<std::string> section_titles() const;
  std::size_t sections_size() const;  // bytes of all the sections' HTML
  void append_sections_html(std::string& to) const;
  std::string chart_specs_html() const;

 private:
  struct Section {
    std::string id, title, html;  // id empty: a place not filled
  };
  const RunFolder& run_;
  const ReportOptions& options_;
  Report& report_;
  std::vector<Section> sections_;
};

// One section per node that published figures or tables (id node_section_id(ID), title "ID
// (type)"), in run.json's order; knows no node type.
void add_node_sections(Page& page, const std::vector<RunNode>& nodes);
std::string node_section_id(const std::string& node_id);

}  // namespace caulk::report
