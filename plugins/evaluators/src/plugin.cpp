#include "caulk/plugin.hpp"

#include "evaluators/src/nodes.hpp"

CAULK_PLUGIN("evaluators", CAULK_VERSION_STRING, "Evaluators: judge rankings and models against ground truth") {
  caulk::evaluators::register_rank_correlation(registrar);
  caulk::evaluators::register_prediction_evals(registrar);
}
