#include "caulk/plugin.hpp"

#include "averagers/src/nodes.hpp"

// OpenBLAS single-threaded: parallelism comes from the engine's pool (docs/architecture.md).
extern "C" void openblas_set_num_threads(int);

CAULK_PLUGIN("averagers", CAULK_VERSION_STRING,
             "Averagers: combine models' predictions with constant or input-dependent (localized) weights") {
  openblas_set_num_threads(1);
  caulk::averagers::register_predictions_io(registrar);
  caulk::averagers::register_local(registrar);
  caulk::averagers::register_baselines(registrar);
  caulk::averagers::register_report(registrar);
  caulk::averagers::register_simulation(registrar);
}
