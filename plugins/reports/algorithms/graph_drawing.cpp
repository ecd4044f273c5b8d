#include "reports/algorithms/graph_drawing.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "caulk/file_hash.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/pipeline.hpp"
#include "reports/algorithms/html_text.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace caulk::report {

namespace {

struct StatusLook {
  const char* fill;
  const char* style;
  const char* pen;
  const char* word;
};

StatusLook look_of(const std::string& status) {
  if (status == "ok") return {"#d8f0d8", "rounded,filled", "1", "ok"};
  if (status == "failed") return {"#f6c4c4", "rounded,filled,bold", "3", "FAILED"};
  if (status == "running") return {"#fff1b0", "rounded,filled,dotted", "2", "running"};
  return {"#e4e4e4", "rounded,filled,dashed", "1.5", "skipped"};
}

std::string read_all(const fs::path& p) {
  std::string text;
  read_file_bytes(p, text);
  return text;
}

fs::path find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string all = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= all.size()) {
    std::size_t end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    fs::path candidate = fs::path(all.substr(start, end - start).empty() ? "." : all.substr(start, end - start)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// Keeps only the <svg> element: the XML declaration, doctype and comments before it do not
// belong inside HTML.
std::string svg_element(const std::string& text) {
  const std::size_t begin = text.find("<svg");
  const std::size_t end = text.rfind("</svg>");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return {};
  return text.substr(begin, end + 6 - begin);
}

}  // namespace

// The first line of an error: the causes are listed once, in the report's "What failed".
static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

namespace {

// The third line of a node's label: its status, whether it was reused, and its time.
std::string status_line(const std::string& status, const Json& node) {
  const StatusLook look = look_of(status);
  const double seconds = node.contains("seconds") && node["seconds"].is_number() ? node["seconds"].get<double>() : 0.0;
  std::string line = std::string(look.word) + (node.value("cached", false) ? " (cached)" : "");
  if (status == "ok" || status == "failed") line += fmt::format(", {:.2f} s", seconds);
  return line;
}

// A stand-in for the status line at least as wide as the real one (in Helvetica every digit has the
// same width): what Graphviz lays out when the drawing is kept for later runs.
std::string reserved_line(const std::string& status, const Json&) {
  if (status == "ok") return "ok (cached), 00.00 s";
  if (status == "failed") return "FAILED, 00000.00 s";
  return look_of(status).word;
}

template <class ThirdLine>
std::string dot_with_lines(const std::string& dot, const Json& run, ThirdLine third_line) {
  const std::size_t close = dot.rfind('}');
  if (close == std::string::npos) return dot;
  std::string extra = "  // status of each node in this run\n";
  if (run.contains("nodes") && run["nodes"].is_object())
    for (const auto& [id, node] : run["nodes"].items()) {
      const std::string status = node.value("status", "skipped");
      const StatusLook look = look_of(status);
      const std::string label = id + "\n" + node.value("type", "") + "\n" + third_line(status, node);
      extra += fmt::format("  {} [label={}, style={}, fillcolor={}, penwidth={}, tooltip={}];\n", dot_quote(id), dot_quote(label),
                           dot_quote(look.style), dot_quote(look.fill), look.pen,
                           dot_quote(id + ": " + status + (node.contains("error") ? " - " + first_line(node.value("error", "")) : "")));
    }
  return dot.substr(0, close) + extra + dot.substr(close);
}

// Text as Graphviz writes it into SVG: HTML's escapes, and '-' as a numeric entity.
std::string svg_text(const std::string& s) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t dash = s.find('-'); dash != std::string::npos; dash = s.find('-', start)) {
    out += html_escape(std::string_view(s).substr(start, dash - start));
    out += "&#45;";
    start = dash + 1;
  }
  return out + html_escape(std::string_view(s).substr(start));
}

// Graphviz's SVG text back to plain text (the entities it writes, and numeric ones).
std::string plain_text(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::size_t semi = s[i] == '&' ? s.find(';', i) : std::string::npos;
    if (semi == std::string::npos || semi - i > 10) {
      out += s[i];
      continue;
    }
    const std::string entity = s.substr(i + 1, semi - i - 1);
    long code = -1;
    if (entity == "amp")
      code = '&';
    else if (entity == "lt")
      code = '<';
    else if (entity == "gt")
      code = '>';
    else if (entity == "quot")
      code = '"';
    else if (entity == "apos")
      code = '\'';
    else if (entity.size() > 1 && entity[0] == '#')
      code = entity[1] == 'x' ? std::strtol(entity.c_str() + 2, nullptr, 16) : std::strtol(entity.c_str() + 1, nullptr, 10);
    if (code <= 0 || code > 0x7f) {  // not one an id of a node can hold here: kept as written, so it matches nothing
      out += s[i];
      continue;
    }
    out += static_cast<char>(code);
    i = semi;
  }
  return out;
}

// Replaces each node's stand-in line by its real one; nothing when the drawing does not have
// exactly one stand-in in each node of `lines` (id -> stand-in, real line).
std::optional<std::string> fill_in_lines(std::string svg, const std::map<std::string, std::pair<std::string, std::string>>& lines) {
  static const std::string kNode = "class=\"node\">";
  std::set<std::string> done;
  std::size_t at = svg.find(kNode);
  while (at != std::string::npos) {
    const std::size_t title = svg.find("<title>", at), title_end = svg.find("</title>", title);
    if (title == std::string::npos || title_end == std::string::npos) return std::nullopt;
    const std::string id = plain_text(svg.substr(title + 7, title_end - title - 7));
    const std::size_t next = svg.find(kNode, title_end);
    const auto it = lines.find(id);
    if (it == lines.end() || !done.insert(id).second) return std::nullopt;
    const std::string stand_in = fmt::format(">{}</text>", svg_text(it->second.first));
    const std::size_t line = svg.find(stand_in, title_end);
    if (line == std::string::npos || (next != std::string::npos && line > next)) return std::nullopt;
    const std::string real = svg_text(it->second.second);
    svg.replace(line + 1, stand_in.size() - 8, real);
    at = svg.find(kNode, line + 1 + real.size());
  }
  if (done.size() != lines.size()) return std::nullopt;
  return svg;
}

// What identifies the `dot` program: a new Graphviz may lay out differently.
std::string program_identity(const fs::path& program) {
  std::error_code ec;
  const fs::path real = fs::canonical(program, ec);
  struct stat st {};
  if (ec || ::stat(real.c_str(), &st) != 0) return program.string();
  return fmt::format("{} {} {}", real.string(), static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec));
}

constexpr const char* kKeptDrawing = "report-graph.svg";

}  // namespace

std::string dot_with_status(const std::string& dot, const Json& run) {
  return dot_with_lines(dot, run, [](const std::string& status, const Json& node) { return status_line(status, node); });
}

GraphDrawing draw_graph_with_status(const std::string& dot, const Json& run, const fs::path& keep_in, bool* reused) {
  if (reused) *reused = false;
  const fs::path program = find_on_path("dot");
  if (keep_in.empty() || program.empty()) return draw_with_graphviz(dot_with_status(dot, run));
  std::map<std::string, std::pair<std::string, std::string>> lines;
  if (run.contains("nodes") && run["nodes"].is_object())
    for (const auto& [id, node] : run["nodes"].items()) {
      const std::string status = node.value("status", "skipped");
      lines[id] = {reserved_line(status, node), status_line(status, node)};
    }
  const std::string layout = dot_with_lines(dot, run, reserved_line);
  const std::string header =
      "<!-- caulk report graph " + content_hash("caulk report graph 1\n" + program_identity(program) + "\n" + layout) + " -->\n";
  const fs::path kept = keep_in / kKeptDrawing;
  // caulk's own state, not what the report read or wrote.
  io::ScopedAccessLog not_the_nodes(nullptr);
  std::string text;
  if (read_file_bytes(kept, text) && text.rfind(header, 0) == 0)
    if (auto filled = fill_in_lines(text.substr(header.size()), lines)) {
      if (reused) *reused = true;
      return GraphDrawing{std::move(*filled), ""};
    }
  GraphDrawing drawn = draw_with_graphviz(layout);
  if (drawn.svg.empty()) return drawn;
  auto filled = fill_in_lines(drawn.svg, lines);
  // A drawing whose stand-ins cannot be found (an unusual id): drawn directly, and not kept.
  if (!filled) return draw_with_graphviz(dot_with_status(dot, run));
  try {
    std::error_code ec;
    if (fs::is_directory(keep_in, ec)) io::write_file_atomic(kept, header + drawn.svg);
  } catch (const std::exception&) {
    // Only a speed-up for the next report.
  }
  return GraphDrawing{std::move(*filled), ""};
}

GraphDrawing draw_with_graphviz(const std::string& dot, std::chrono::seconds timeout) {
  GraphDrawing out;
  const fs::path program = find_on_path("dot");
  if (program.empty()) {
    out.note = "Graphviz's `dot` was not found on PATH (Debian package graphviz), so the graph is shown as DOT text.";
    return out;
  }
  std::error_code ec;
  std::string pattern = (fs::temp_directory_path(ec) / "caulk-report-XXXXXX").string();
  if (ec || !::mkdtemp(pattern.data())) {
    out.note = "no temporary folder for Graphviz, so the graph is shown as DOT text.";
    return out;
  }
  const fs::path dir = pattern, in = dir / "graph.dot", svg = dir / "graph.svg", err = dir / "stderr.txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << dot;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::string a0 = program.string(), a1 = "-Tsvg", a2 = "-o" + svg.string(), a3 = in.string();
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    out.note = fmt::format("Graphviz's `dot` could not be started ({}), so the graph is shown as DOT text.", std::strerror(spawned));
  } else {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (done == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      out.note = fmt::format("Graphviz's `dot` did not finish within {} s, so the graph is shown as DOT text.", timeout.count());
    } else if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string message = read_all(err);
      while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
      out.note = "Graphviz's `dot` failed" + (message.empty() ? std::string() : ": " + message) + "; the graph is shown as DOT text.";
    } else {
      out.svg = svg_element(read_all(svg));
      if (out.svg.empty()) out.note = "Graphviz's `dot` wrote no SVG, so the graph is shown as DOT text.";
    }
  }
  fs::remove_all(dir, ec);
  return out;
}

}  // namespace caulk::report
