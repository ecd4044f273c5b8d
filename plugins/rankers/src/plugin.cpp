#include "caulk/plugin.hpp"

#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

// OpenBLAS's eigensolver gives different bits with different thread counts; results must not
// depend on --jobs, so BLAS runs single-threaded and parallelism comes from the engine's pool.
extern "C" void openblas_set_num_threads(int);

CAULK_PLUGIN("rankers", CAULK_VERSION_STRING, "Transferability metrics: score every model of a hub before tuning") {
  openblas_set_num_threads(1);
  caulk::rankers::register_logme(registrar);
  caulk::rankers::register_covariance_rankers(registrar);
  caulk::rankers::register_source_probability_rankers(registrar);
  caulk::rankers::register_class_model_rankers(registrar);
}
