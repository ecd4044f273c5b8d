#include "reports/algorithms/graph_drawing.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

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
  if (status == "running") return {"#fff1b0", "rounded,filled,dotted", "2", "running (this report)"};
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

std::string dot_with_status(const std::string& dot, const Json& run) {
  const std::size_t close = dot.rfind('}');
  if (close == std::string::npos) return dot;
  std::string extra = "  // status of each node in this run\n";
  if (run.contains("nodes") && run["nodes"].is_object())
    for (const auto& [id, node] : run["nodes"].items()) {
      const std::string status = node.value("status", "skipped");
      const StatusLook look = look_of(status);
      const double seconds = node.contains("seconds") && node["seconds"].is_number() ? node["seconds"].get<double>() : 0.0;
      std::string label = id + "\n" + node.value("type", "") + "\n" + look.word + (node.value("cached", false) ? " (cached)" : "");
      if (status == "ok" || status == "failed") label += fmt::format(", {:.2f} s", seconds);
      extra += fmt::format("  {} [label={}, style={}, fillcolor={}, penwidth={}, tooltip={}];\n", dot_quote(id), dot_quote(label),
                           dot_quote(look.style), dot_quote(look.fill), look.pen,
                           dot_quote(id + ": " + status + (node.contains("error") ? " - " + first_line(node.value("error", "")) : "")));
    }
  return dot.substr(0, close) + extra + dot.substr(close);
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
