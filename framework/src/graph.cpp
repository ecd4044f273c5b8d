#include "caulk/graph.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/strong_components.hpp>

#include <algorithm>
#include <functional>
#include <queue>

#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"

namespace caulk {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

struct PipelineGraph::Impl {
  Graph g;
};

PipelineGraph::PipelineGraph(const Pipeline& pipeline) : impl_(std::make_unique<Impl>()) {
  impl_->g = Graph(pipeline.nodes.size());
  // An edge source -> consumer for every dependency (once per pair).
  for (std::size_t i = 0; i < pipeline.nodes.size(); ++i)
    for (std::size_t d : pipeline.nodes[i].depends_on) boost::add_edge(d, i, impl_->g);
}

PipelineGraph::~PipelineGraph() = default;

std::vector<std::vector<std::size_t>> PipelineGraph::cycles() const {
  const Graph& g = impl_->g;
  std::size_t n = boost::num_vertices(g);
  std::vector<int> component(n);
  int count = n ? boost::strong_components(g, boost::make_iterator_property_map(component.begin(), boost::get(boost::vertex_index, g))) : 0;
  std::vector<std::vector<std::size_t>> members(count);
  for (std::size_t v = 0; v < n; ++v) members[component[v]].push_back(v);

  std::vector<std::vector<std::size_t>> out;
  for (auto& m : members) {
    std::sort(m.begin(), m.end());
    bool self_loop = m.size() == 1 && boost::edge(m[0], m[0], g).second;
    if (m.size() < 2 && !self_loop) continue;
    // Walk a simple cycle through the component from its first node, preferring file order.
    std::size_t start = m.front();
    std::vector<std::size_t> path{start};
    std::vector<bool> on_path(n, false);
    on_path[start] = true;
    std::function<bool(std::size_t)> walk = [&](std::size_t v) -> bool {
      std::vector<std::size_t> next;
      for (auto [e, end] = boost::out_edges(v, g); e != end; ++e) next.push_back(boost::target(*e, g));
      std::sort(next.begin(), next.end());
      for (std::size_t w : next) {
        if (component[w] != component[start]) continue;
        if (w == start) return true;
        if (on_path[w]) continue;
        on_path[w] = true;
        path.push_back(w);
        if (walk(w)) return true;
        path.pop_back();
        on_path[w] = false;
      }
      return false;
    };
    walk(start);
    out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::size_t> PipelineGraph::topological_order() const {
  const Graph& g = impl_->g;
  std::size_t n = boost::num_vertices(g);
  std::vector<std::size_t> indegree(n, 0), order;
  for (std::size_t v = 0; v < n; ++v) indegree[v] = boost::in_degree(v, g);
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t v = 0; v < n; ++v)
    if (indegree[v] == 0) ready.push(v);
  while (!ready.empty()) {
    std::size_t v = ready.top();
    ready.pop();
    order.push_back(v);
    for (auto [e, end] = boost::out_edges(v, g); e != end; ++e)
      if (--indegree[boost::target(*e, g)] == 0) ready.push(boost::target(*e, g));
  }
  return order;
}

std::vector<std::size_t> PipelineGraph::descendants(std::size_t node) const {
  const Graph& g = impl_->g;
  std::vector<bool> seen(boost::num_vertices(g), false);
  std::vector<std::size_t> stack{node}, out;
  while (!stack.empty()) {
    std::size_t v = stack.back();
    stack.pop_back();
    for (auto [e, end] = boost::out_edges(v, g); e != end; ++e) {
      std::size_t w = boost::target(*e, g);
      if (!seen[w]) {
        seen[w] = true;
        out.push_back(w);
        stack.push_back(w);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string pipeline_to_dot(const Pipeline& pipeline) {
  std::string out = "digraph " + dot_quote(pipeline.config.name) + " {\n";
  out += "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  for (const auto& n : pipeline.nodes)
    out += "  " + dot_quote(n.config.id) + " [label=" + dot_quote(n.config.id + "\n" + n.config.type) + "];\n";
  for (const auto& n : pipeline.nodes)
    for (const auto& in : n.inputs)
      for (const auto& s : in.sources) {
        const auto& src = pipeline.nodes[s.node];
        const PortSpec* port = src.type->spec.find_output(s.port);
        std::string label = port ? port->type : std::string();
        out += "  " + dot_quote(src.config.id) + " -> " + dot_quote(n.config.id) + " [label=" + dot_quote(label) +
               ", tooltip=" + dot_quote(src.config.id + "." + s.port + " -> " + n.config.id + "." + in.port) + "];\n";
      }
  out += "}\n";
  return out;
}

}  // namespace caulk
