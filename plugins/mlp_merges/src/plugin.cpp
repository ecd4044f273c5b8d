#include "caulk/plugin.hpp"

#include "mlp_merges/src/nodes.hpp"

CAULK_PLUGIN("mlp_merges", CAULK_VERSION_STRING,
             "MLP merges: RegMean and greedy soups of native MLP checkpoints; output and feature ensembles; prediction stability "
             "under parameter scaling; weight-pattern images") {
  caulk::mlp_merges::register_merges(registrar);
  caulk::mlp_merges::register_ensembles(registrar);
  caulk::mlp_merges::register_analyses(registrar);
}
