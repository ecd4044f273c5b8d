#include "caulk/plugin.hpp"

#include "tuners/src/nodes.hpp"

CAULK_PLUGIN("tuners", CAULK_VERSION_STRING,
             "Tuners: tune a target model with the top-K ranked models of a hub (B-Tuning), distillation and the baselines") {
  caulk::tuners::register_btuning(registrar);
  caulk::tuners::register_distill(registrar);
  caulk::tuners::register_top_ranked(registrar);
  caulk::tuners::register_subsample(registrar);
  caulk::tuners::register_aggregate(registrar);
}
