// Human-readable descriptions of node types, from the same NodeSpecs the engine validates with:
// `caulk nodes` (a list), `caulk nodes TYPE` (like gst-inspect) and `caulk nodes --markdown`
// (docs/nodes.md is generated from it, so the reference never drifts).
#pragma once
#include <string>

namespace caulk {

class Registry;
struct NodeType;

std::string list_node_types(const Registry& registry);
std::string describe_node_type(const NodeType& type, const Registry& registry);
std::string node_reference_markdown(const Registry& registry);
// Plugins that failed to load and why ("" when none did).
std::string describe_plugin_failures(const Registry& registry);

}  // namespace caulk
