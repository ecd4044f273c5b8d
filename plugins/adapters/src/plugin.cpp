#include "caulk/plugin.hpp"

#include "adapters/src/nodes.hpp"

CAULK_PLUGIN("adapters", CAULK_VERSION_STRING, "Bring data and models in: datasets and hub manifests") {
  caulk::adapters::register_dataset_load(registrar);
  caulk::adapters::register_precomputed(registrar);
  caulk::adapters::register_dataset_images(registrar);
}
