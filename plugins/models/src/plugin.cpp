#include "caulk/plugin.hpp"

#include "models/src/nodes.hpp"

CAULK_PLUGIN("models", CAULK_VERSION_STRING,
             "Models: run models of any family (MLP checkpoints, TorchScript), tune (parameter-efficient modes), analyse and "
             "pre-train native MLP checkpoints") {
  caulk::models::register_zoo_pretrain(registrar);
  caulk::models::register_adapter_mlp(registrar);
  caulk::models::register_adapter_models(registrar);
  caulk::models::register_tune_peft(registrar);
  caulk::models::register_fisher(registrar);
  caulk::models::register_sample_complexity(registrar);
}
