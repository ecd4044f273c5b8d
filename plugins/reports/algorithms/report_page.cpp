#include <fmt/format.h>

#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "caulk/error.hpp"
#include "caulk/failures.hpp"
#include "caulk/json_text.hpp"
#include "reports/algorithms/graph_drawing.hpp"
#include "reports/algorithms/html_text.hpp"
#include "reports/algorithms/report_page.hpp"

namespace fs = std::filesystem;

namespace caulk::report {

namespace {

const char* status_mark(const std::string& status) {
  if (status == "ok") return "&#10003; ok";           // check mark
  if (status == "failed") return "&#10007; FAILED";   // ballot x
  if (status == "running") return "&#8230; running";  // a run that was killed, or is still going
  return "&#8211; skipped";
}

}  // namespace

// ------------------------------------------------------------------------------ run.json

namespace {

// The record's check and pipeline.dot, whether the record was read or given.
void check_record_and_read_dot(RunFolder& folder) {
  const Json& record = folder.record();
  if (!record.is_object() || !record.contains("nodes") || !record["nodes"].is_object())
    throw DataError((folder.dir / "run.json").string(), "not a caulk run record (no \"nodes\" object)");
  read_file_bytes(folder.dir / "pipeline.dot", folder.dot);
}

// What a section that could not be made says instead.
std::string unmade_section_note(const std::exception& e) {
  return "<p class=\"note\">This section could not be made from run.json: " + html_escape(e.what()) + "</p>\n";
}

}  // namespace

RunFolder read_run_folder(const fs::path& dir) {
  RunFolder folder;
  folder.dir = dir;
  const fs::path file = dir / "run.json";
  std::string text;
  if (!fs::is_regular_file(file) || !read_file_bytes(file, text))
    throw DataError(file.string(), "no run.json here: give the output folder of a `caulk run` (its --out)");
  try {
    folder.run = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw DataError(file.string(), std::string("not valid JSON: ") + e.what());
  }
  check_record_and_read_dot(folder);
  return folder;
}

RunFolder run_folder_with_record(const fs::path& dir, const Json& record) {
  RunFolder folder;
  folder.dir = dir;
  folder.written = &record;
  check_record_and_read_dot(folder);
  return folder;
}

const Json& RunNode::summary() const {
  static const Json kEmpty = Json::object();
  if (json && json->contains("summary") && (*json)["summary"].is_object()) return (*json)["summary"];
  return kEmpty;
}

const Json* RunNode::table(const std::string& port) const {
  if (!json || !json->contains("tables") || !(*json)["tables"].is_object()) return nullptr;
  const Json& tables = (*json)["tables"];
  if (!tables.contains(port)) return nullptr;
  const Json& t = tables[port];
  if (!t.is_object() || !t.contains("columns") || !t["columns"].is_array() || !t.contains("rows") || !t["rows"].is_array()) return nullptr;
  return &t;
}

std::vector<RunNode> run_nodes(const Json& run) {
  std::vector<RunNode> out;
  for (const auto& [id, node] : run["nodes"].items()) {
    if (!node.is_object()) continue;
    RunNode n;
    n.id = id;
    n.type = node.contains("type") && node["type"].is_string() ? node["type"].get<std::string>() : "";
    n.status = node.contains("status") && node["status"].is_string() ? node["status"].get<std::string>() : "skipped";
    n.json = &node;
    out.push_back(std::move(n));
  }
  return out;
}

// ------------------------------------------------------------------------------ Page

namespace {
bool has_values(const Json& j) {
  if (j.is_object()) {
    if (j.contains("values") && j["values"].is_array() && !j["values"].empty()) return true;
    for (const auto& [key, v] : j.items())
      if (has_values(v)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (has_values(v)) return true;
  }
  return false;
}
}  // namespace

std::string Page::chart(const Json& spec) {
  if (!has_values(spec)) {
    const std::string title = spec.contains("title") && spec["title"].is_object() ? spec["title"].value("text", "") : "";
    return "<p class=\"note\">Nothing to draw for " + html_escape(title) + ": no finite values.</p>\n";
  }
  const std::size_t n = report_.charts.size() + 1;
  report_.charts.push_back(spec);
  std::string title;
  if (spec.contains("title") && spec["title"].is_object() && spec["title"].contains("text"))
    title = spec["title"]["text"].get<std::string>();
  report_.chart_titles.push_back(title);
  std::string inner;
  if (!options_.charts.available())
    inner = fmt::format("<p class=\"nochart\"><strong>Chart not drawn: {}.</strong> {} The numbers are in the tables of this report.</p>",
                        html_escape(title), html_escape(options_.charts.problem + "; rebuild caulk with npm installed (docs/report.md)."));
  // data-title stays as written (vega-embed replaces aria-label with the spec's description), so a
  // test can find a chart by its title.
  return fmt::format(
      "<figure class=\"chart\" id=\"chart-{0}\" data-spec=\"spec-{0}\" data-title=\"{1}\" role=\"img\" aria-label=\"{1}\">{2}</figure>\n",
      n, html_escape(title), inner);
}

std::string Page::chart_specs_html() const {
  std::string out;
  for (std::size_t i = 0; i < report_.charts.size(); ++i)
    out += fmt::format("<script type=\"application/json\" id=\"spec-{}\">{}</script>\n", i + 1, json_for_script(report_.charts[i]));
  return out;
}

std::string Page::image(const fs::path& relative) {
  std::string bytes;
  const fs::path file = run_.dir / relative;
  if (!read_file_bytes(file, bytes) || bytes.empty())
    return fmt::format("<p class=\"note\">Image {} is missing from the run folder.</p>\n", html_escape(relative.generic_string()));
  const auto text = png_text_chunks(bytes);
  auto get = [&](const char* key) {
    auto it = text.find(key);
    return it == text.end() ? std::string() : it->second;
  };
  const std::string title = get("Title").empty() ? relative.generic_string() : get("Title");
  ++report_.images;
  return fmt::format(
      "<figure class=\"image\"><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption><strong>{}</strong> "
      "<span class=\"file\">({})</span><br>{}</figcaption></figure>\n",
      base64(bytes), html_escape(title + (get("Description").empty() ? "" : ": " + get("Description"))), html_escape(title),
      html_escape(relative.generic_string()), html_escape(get("Description")));
}

void Page::add_section(const std::string& id, const std::string& title, const std::string& body) {
  fill_section(reserve_section(), id, title, body);
}

std::size_t Page::reserve_section() {
  sections_.emplace_back();
  return sections_.size() - 1;
}

void Page::fill_section(std::size_t place, const std::string& id, const std::string& title, const std::string& body) {
  Section& s = sections_.at(place);
  s.id = id;
  s.title = title;
  s.html = fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", html_escape(id), html_escape(title));
  s.html.reserve(s.html.size() + body.size() + 11);
  s.html.append(body).append("</section>\n");
}

std::vector<std::string> Page::section_ids() const {
  std::vector<std::string> out;
  for (const auto& s : sections_)
    if (!s.id.empty()) out.push_back(s.id);
  return out;
}

std::vector<std::string> Page::section_titles() const {
  std::vector<std::string> out;
  for (const auto& s : sections_)
    if (!s.id.empty()) out.push_back(s.title);
  return out;
}

std::size_t Page::sections_size() const {
  std::size_t n = 0;
  for (const auto& s : sections_) n += s.html.size();
  return n;
}

void Page::append_sections_html(std::string& to) const {
  for (const auto& s : sections_) to += s.html;
}

// ------------------------------------------------------------------------------ sections of any run

namespace {

// The first line of an error: the causes are listed once, under "What failed".
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void add_failure_section(Page& page, const std::vector<RunNode>& nodes) {
  // Each cause once, with the nodes and units it hit (caulk/failures.hpp); run.json keeps each node's error.
  std::vector<NodeFailure> failed;
  for (const auto& n : nodes)
    if (n.status == "failed") failed.push_back({n.id, n.type, n.json->value("error", std::string("(no message)"))});
  std::string body;
  for (const auto& cause : group_failures(failed))
    body += fmt::format("<div class=\"failure\"><pre>&#10007; {}</pre></div>\n", html_escape(cause.str()));
  if (body.empty()) return;
  std::string skipped;
  for (const auto& n : nodes)
    if (n.status == "skipped")
      skipped += fmt::format("<li><code>{}</code> ({}): {}</li>\n", html_escape(n.id), html_escape(n.type),
                             html_escape(n.json->value("error", std::string("not run"))));
  if (!skipped.empty()) body += "<p>Not run because of it:</p>\n<ul>\n" + skipped + "</ul>\n";
  page.add_section("failures", "What failed", body);
}

// The pipeline section's body and the kind of graph it holds (Report::graph). Touches nothing
// shared: it is made on a thread of its own while the nodes' sections are made.
struct PipelineSection {
  std::string body, graph;
};

PipelineSection pipeline_section(const RunFolder& run, const std::vector<RunNode>& nodes, const ReportOptions& options) {
  PipelineSection section;
  std::string& body = section.body;
  if (run.dot.empty()) {
    section.graph = "none";
    body += "<p class=\"note\">This run folder has no pipeline.dot (runs of caulk before reports), so the graph is not drawn.</p>\n";
  } else {
    const std::string dot = dot_with_status(run.dot, run.record());
    GraphDrawing drawing;
    if (options.draw_graph)
      drawing = draw_graph_with_status(run.dot, run.record(), options.keep_graph_in);
    else
      drawing.note = "The graph drawing was turned off, so it is shown as DOT text.";
    if (!drawing.svg.empty()) {
      section.graph = "svg";
      body += "<figure class=\"graph\" role=\"img\" aria-label=\"The pipeline's graph: each node with its type, status and time\">" +
              drawing.svg +
              "<figcaption>Each node with its type, status and time. Border: solid ok, thick failed, dashed skipped, dotted this "
              "report; edges are labelled with the artifact type they carry.</figcaption></figure>\n";
    } else {
      section.graph = "dot";
      body += "<p class=\"note\">" + html_escape(drawing.note) + "</p>\n<pre class=\"dot\">" + html_escape(dot) + "</pre>\n";
    }
  }
  body +=
      "<table class=\"nodes\"><thead><tr><th>node</th><th>type</th><th>status</th><th>time (s)</th><th>error</th></tr></thead><tbody>\n";
  for (const auto& n : nodes) {
    const double seconds = n.json->contains("seconds") && (*n.json)["seconds"].is_number() ? (*n.json)["seconds"].get<double>() : 0.0;
    body +=
        fmt::format("<tr class=\"status-{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{:.3f}</td><td>{}</td></tr>\n",
                    html_escape(n.status), html_escape(n.id), html_escape(n.type),
                    std::string(status_mark(n.status)) + (n.json->value("cached", false) ? " (cached)" : ""), seconds,
                    html_escape(first_line(n.json->value("error", std::string()))));
  }
  body += "</tbody></table>\n";
  return section;
}

const char* kStyle = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:1em 1.5em;color:#111;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #333;padding-bottom:.2em;margin-top:1.8em}h3{margin-top:1.4em}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.status-failed td{background:#fbe3e3;font-weight:bold}tr.status-skipped td{color:#555;font-style:italic}
.failure{border:3px solid #b00;background:#fff4f4;padding:.2em 1em;margin:.6em 0}.failure pre{white-space:pre-wrap}
.status{font-size:1.1em}.status-ok{color:#060}.status-failed{color:#b00}
.charts{display:flex;flex-wrap:wrap;gap:1.2em}.caption{font-size:.85em;color:#333;max-width:36em;margin:.2em 0}figure{margin:.6em 0}figure.chart{min-height:2em}
figure.graph svg{max-width:100%;height:auto}.images{display:flex;flex-wrap:wrap;gap:1em}
figure.image{max-width:24em}figure.image img{image-rendering:pixelated;max-width:100%;border:1px solid #999}
figcaption{font-size:.85em;color:#333;max-width:60em}.file{color:#555}
.note,.nochart{background:#fff8e0;border-left:4px solid #c90;padding:.4em .8em}
pre.dot{background:#f4f4f4;padding:.6em;overflow:auto;font-size:.8em}details{margin:.4em 0}summary{cursor:pointer}
nav ul{columns:3;font-size:.9em}footer{margin-top:3em;font-size:.8em;color:#444}
@media print{details{display:block}.charts{display:block}}
)css";

// Before the libraries: records every console error and warning, uncaught exception and rejected
// promise, so a test (or a person) can see that the page drew cleanly.
const char* kStatusScript = R"js(
window.caulkReport={charts:0,drawn:0,empty:[],failed:[],errors:[],warnings:[],done:false};
(function(s){var e=console.error,w=console.warn;
function text(a){return Array.prototype.map.call(a,function(x){return x&&x.stack?x.stack:String(x)}).join(' ')}
console.error=function(){s.errors.push(text(arguments));return e.apply(console,arguments)};
console.warn=function(){s.warnings.push(text(arguments));return w.apply(console,arguments)};
window.addEventListener('error',function(ev){s.errors.push('uncaught: '+ev.message)});
window.addEventListener('unhandledrejection',function(ev){s.errors.push('unhandled rejection: '+(ev.reason&&ev.reason.stack||ev.reason))});
})(window.caulkReport);
)js";

// After the chart specs: draws each chart with vega-embed and counts the marks each drew.
const char* kDrawScript = R"js(
(function(){var s=window.caulkReport,b=document.body,figures=document.querySelectorAll('figure.chart[data-spec]');s.charts=figures.length;
function finish(){s.done=true;b.setAttribute('data-charts',s.charts);b.setAttribute('data-charts-drawn',s.drawn);
b.setAttribute('data-charts-empty',s.empty.length);b.setAttribute('data-charts-failed',s.failed.length);
b.setAttribute('data-console-errors',s.errors.length);b.setAttribute('data-console-warnings',s.warnings.length);
b.setAttribute('data-report-status','done');document.getElementById('render-log').textContent=JSON.stringify(s);}
if(typeof vegaEmbed!=='function'){s.library='missing';b.setAttribute('data-chart-library','missing');finish();return;}
b.setAttribute('data-chart-library','present');
Promise.all(Array.prototype.map.call(figures,function(el){
 var spec;try{spec=JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);}catch(e){s.failed.push(el.id+': '+e);return Promise.resolve();}
 return vegaEmbed(el,spec,{renderer:'svg',actions:false,logLevel:vega.Warn}).then(function(r){
  var marks=el.querySelectorAll('g.role-mark > *').length;el.setAttribute('data-marks',marks);
  if(marks>0)s.drawn++;else s.empty.push(el.id);
 }).catch(function(e){s.failed.push(el.id+': '+e);el.insertAdjacentHTML('beforeend','<p class="nochart">This chart could not be drawn.</p>');});
})).then(finish,function(e){s.errors.push('draw: '+e);finish();});
})();
)js";

}  // namespace

// ------------------------------------------------------------------------------ the page

namespace {

// The page's text in order: the head, each script in a <script> element of its own, the rest.
template <class Sink>
void for_each_piece(const Report& r, Sink&& sink) {
  sink(std::string_view(r.head));
  for (const auto& script : r.scripts) {
    sink(std::string_view("<script>\n"));
    for (const auto& piece : script.pieces()) sink(piece);
    sink(std::string_view("\n</script>\n"));
  }
  sink(std::string_view(r.rest));
}

}  // namespace

std::string Report::html() const {
  std::string out;
  for_each_piece(*this, [&](std::string_view piece) { out += piece; });
  return out;
}

void Report::write(io::AtomicFile& file) const {
  for_each_piece(*this, [&](std::string_view piece) { file.write(piece); });
  for (const auto& script : scripts) script.check_intact();  // a script file cut short while copied: not committed
}

Report build_report(const RunFolder& folder, const ReportOptions& options) {
  const Json& record = folder.record();
  if (!record.is_object() || !record.contains("nodes") || !record["nodes"].is_object())
    throw Error("the run record has no \"nodes\" object");
  Report report;
  Page page(folder, options, report);
  const std::vector<RunNode> nodes = run_nodes(record);
  const std::string pipeline = record.value("pipeline", std::string("(unnamed)"));
  const std::string status = record.value("status", std::string("unknown"));
  const std::string title = options.title.empty() ? "caulk run: " + pipeline : options.title;

  // A run.json edited by hand (or written by a newer caulk) may hold a value of another type than
  // a section expects: that section says so, and the rest of the report is still written.
  auto guarded = [&](const char* id, const char* name, void (*add)(Page&, const std::vector<RunNode>&)) {
    try {
      add(page, nodes);
    } catch (const std::exception& e) {
      page.add_section(id, name, unmade_section_note(e));
    }
  };
  guarded("failures", "What failed", add_failure_section);
  // The graph (its kept layout read back, or Graphviz run) is drawn while the nodes' sections are
  // made, on a thread of its own.
  const std::size_t pipeline_place = page.reserve_section();
  auto graph = std::async(std::launch::async, [&]() -> PipelineSection {
    try {
      return pipeline_section(folder, nodes, options);
    } catch (const std::exception& e) {
      return {unmade_section_note(e), ""};
    }
  });
  add_node_sections(page, nodes);  // each node guards its own section
  const PipelineSection drawn = graph.get();
  report.graph = drawn.graph;
  page.fill_section(pipeline_place, "pipeline", "Pipeline", drawn.body);
  report.sections = page.section_ids();

  std::map<std::string, int> counts;
  double seconds = 0;
  for (const auto& n : nodes) {
    ++counts[n.status];
    if (n.json->contains("seconds") && (*n.json)["seconds"].is_number()) seconds += (*n.json)["seconds"].get<double>();
  }
  std::string tally;
  for (const auto& [s, c] : counts) tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", c, s);

  std::string nav;
  const std::vector<std::string> titles = page.section_titles();
  for (std::size_t i = 0; i < report.sections.size(); ++i)
    nav += fmt::format("<li><a href=\"#{}\">{}</a></li>", html_escape(report.sections[i]), html_escape(titles[i]));

  const ChartLibrary& js = options.charts;
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<meta name=\"generator\" content=\"caulk " + html_escape(options.caulk_version) + "\">\n";
  html += "<title>" + html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n";
  html += std::string("<script>") + kStatusScript + "</script>\n";
  report.head = std::move(html);
  if (js.available()) report.scripts = {js.vega, js.vega_lite, js.vega_embed};
  html.clear();
  // Once, the size of its big parts (the licences, the sections with their images): a page grown
  // by doubling is copied and faulted in many times over.
  html.reserve(2 * js.licenses.size() + page.sections_size() + (std::size_t{64} << 10));
  html += "</head>\n<body data-report-status=\"loading\">\n";
  html += "<header><h1>" + html_escape(title) + "</h1>\n";
  html += fmt::format("<p class=\"status status-{}\">Run <strong>{}</strong>: {} nodes ({}), {:.2f} s of node time.</p>\n",
                      status == "ok" ? "ok" : "failed", html_escape(status == "ok" ? "succeeded" : "FAILED"), nodes.size(),
                      html_escape(tally), seconds);
  if (record.contains("description") && record["description"].is_string())
    html += "<p>" + html_escape(record["description"].get<std::string>()) + "</p>\n";
  if (!js.available())
    html += "<p class=\"nochart\"><strong>Charts are not drawn in this report:</strong> " + html_escape(js.problem) +
            ". Rebuild caulk with Node.js and npm installed (scripts/install-deps.sh, docs/report.md); tables and images are "
            "complete.</p>\n";
  html += "<nav><ul>" + nav + "</ul></nav></header>\n<main>\n";
  page.append_sections_html(html);
  html += "</main>\n";
  html += "<footer><p>Made by caulk " + html_escape(options.caulk_version) + " from " + html_escape("run.json") +
          (js.available() ? "; charts drawn by " + html_escape(js.versions) + " (inline, so this file opens offline)" : "") + ".</p>\n";
  if (js.available() && !js.licenses.empty())
    html += "<details><summary>Licences of the inlined JavaScript</summary><pre>" + html_escape(js.licenses) + "</pre></details>\n";
  html += "<pre id=\"render-log\" hidden></pre></footer>\n";
  html += page.chart_specs_html();
  html += std::string("<script>") + kDrawScript + "</script>\n</body>\n</html>\n";
  report.rest = std::move(html);
  return report;
}

}  // namespace caulk::report
