#include "caulk/plugin.hpp"

#include "mergers/src/nodes.hpp"

CAULK_PLUGIN("mergers", CAULK_VERSION_STRING,
             "Mergers: merge checkpoints of one architecture (soups, task arithmetic, TIES, DARE, SLERP, Fisher) with a streaming engine") {
  caulk::mergers::register_checkpoint_load(registrar);
  caulk::mergers::register_merge_nodes(registrar);
  caulk::mergers::register_predict(registrar);
  caulk::mergers::register_search(registrar);
}
