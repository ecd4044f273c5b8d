// The results of the run, grouped by node: every Figure and Table each node published, as run.json
// keeps them (nodes.ID.figures and nodes.ID.tables). Nothing here knows a node type: a node of any
// plugin gets the same layout (docs/report.md).
#include <fmt/format.h>

#include "caulk/json_text.hpp"
#include "reports/algorithms/html_text.hpp"
#include "reports/algorithms/report_page.hpp"

namespace caulk::report {

namespace {

std::string cell_html(const Json& cell) {
  if (cell.is_null()) return "<td class=\"empty\"></td>";
  if (cell.is_number_integer()) return fmt::format("<td class=\"num\">{}</td>", cell.get<long long>());
  if (cell.is_number()) {
    const double v = cell.get<double>();
    return fmt::format("<td class=\"num\" title=\"{}\">{}</td>", fmt::format("{}", v), html_escape(format_number(v)));
  }
  if (cell.is_string()) return "<td>" + html_escape(cell.get<std::string>()) + "</td>";
  return "<td>" + html_escape(json_text(cell)) + "</td>";
}

std::string text_of(const Json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_string() ? object[key].get<std::string>() : std::string();
}

// The node's figures: charts side by side, then the images; each with its caption.
std::string figures_html(Page& page, const RunNode& n) {
  if (!n.json->contains("figures") || !(*n.json)["figures"].is_object()) return {};
  std::string charts, images;
  for (const auto& [port, figure] : (*n.json)["figures"].items()) {
    if (!figure.is_object()) continue;
    const std::string caption = text_of(figure, "caption");
    if (figure.contains("spec") && figure["spec"].is_object())
      charts += "<div class=\"figure\">" + page.chart(figure["spec"]) +
                (caption.empty() ? "" : "<p class=\"caption\">" + html_escape(caption) + "</p>") + "</div>\n";
    if (figure.contains("images") && figure["images"].is_array()) {
      std::string inner;
      for (const auto& file : figure["images"])
        if (file.is_string()) inner += page.image(file.get<std::string>());
      if (!inner.empty()) {
        const std::string title = text_of(figure, "title");
        images += "<p><strong>" + html_escape(title.empty() ? port : title) + "</strong>" +
                  (caption.empty() ? "" : " " + html_escape(caption)) + "</p>\n<div class=\"images\">\n" + inner + "</div>\n";
      }
    }
  }
  return (charts.empty() ? "" : "<div class=\"charts\">\n" + charts + "</div>\n") + images;
}

std::string tables_html(Page& page, const RunNode& n) {
  if (!n.json->contains("tables") || !(*n.json)["tables"].is_object()) return {};
  std::string body;
  for (const auto& [port, raw] : (*n.json)["tables"].items()) {
    const Json* t = n.table(port);
    if (!t) continue;
    ++page.report().tables;
    const Json& rows = (*t)["rows"];
    const std::string title = text_of(*t, "title").empty() ? port : text_of(*t, "title");
    body += fmt::format("<details{}><summary><strong>{}</strong> <span class=\"file\">(output <code>{}</code>; {} rows)</span></summary>\n",
                        rows.size() <= 30 ? " open" : "", html_escape(title), html_escape(port), rows.size());
    body += "<table><thead><tr>";
    for (const auto& c : (*t)["columns"]) body += "<th>" + html_escape(c.is_string() ? c.get<std::string>() : json_text(c)) + "</th>";
    body += "</tr></thead><tbody>\n";
    for (const auto& row : rows) {
      body += "<tr>";
      if (row.is_array())
        for (const auto& cell : row) body += cell_html(cell);
      body += "</tr>\n";
    }
    body += "</tbody></table></details>\n";
  }
  return body;
}

}  // namespace

std::string node_section_id(const std::string& node_id) { return "node-" + node_id; }

void add_node_sections(Page& page, const std::vector<RunNode>& nodes) {
  for (const auto& n : nodes) {
    std::string body;
    try {
      body = figures_html(page, n) + tables_html(page, n);
    } catch (const std::exception& e) {
      // A run.json edited by hand (or written by a newer caulk) spoils only this node's section.
      body = "<p class=\"note\">The figures and tables of this node could not be read from run.json: " + html_escape(e.what()) + "</p>\n";
    }
    if (body.empty()) continue;
    page.add_section(node_section_id(n.id), n.id + " (" + n.type + ")", body);
  }
}

}  // namespace caulk::report
