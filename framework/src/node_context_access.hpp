// The engine's side of a NodeContext: what the executor takes from a node once it has run. Only
// the engine includes this header; a node publishes and prints, and never takes either back.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "caulk/context.hpp"

namespace caulk {

class NodeContextEngineAccess {
 public:
  static std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> take_outputs(NodeContext& ctx) { return ctx.take_outputs(); }
  static std::string take_printed(NodeContext& ctx) { return ctx.take_printed(); }
};

}  // namespace caulk
