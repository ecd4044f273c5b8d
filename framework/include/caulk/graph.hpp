// The pipeline as a Boost.Graph DAG: cycle detection (naming the nodes on each cycle), run order
// and the Graphviz drawing.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace caulk {

struct Pipeline;

class PipelineGraph {
 public:
  explicit PipelineGraph(const Pipeline& pipeline);
  ~PipelineGraph();

  // Each cycle as the nodes along it, starting from its first node in file order.
  std::vector<std::vector<std::size_t>> cycles() const;
  // A topological order; among nodes ready at the same time, file order first.
  std::vector<std::size_t> topological_order() const;
  // Every node that depends, directly or not, on `node`.
  std::vector<std::size_t> descendants(std::size_t node) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace caulk
