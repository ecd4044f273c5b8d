// The data checks of checkpoint.load and the merge nodes (checkpoint_checks.cpp).
#pragma once
#include "caulk/manifest.hpp"
#include "caulk/node.hpp"

namespace caulk::mergers {
// The checkpoint hub manifest checkpoint.load reads (checkpoint_load_node.cpp).
const ManifestSchema& merge_hub_schema();
void add_checkpoint_load_data_check(NodeSpec& spec);
void add_merge_data_check(NodeSpec& spec);
}  // namespace caulk::mergers
