// The predictions manifest: the hub manifest's form, whose models name prediction files.
//
//   [hub]
//   name = "my-models"
//   kind = "regression"            # or "classification" (N x C probabilities)
//   [[model]]
//   name = "ridge"
//   predictions = { val = "ridge.val.npy", test = "ridge.test.npy" }   # N x C .npy, one per split
//   parameters = 12                # optional: the number of parameters (Mallows model averaging)
//   description = "..."
#pragma once
#include "caulk/manifest.hpp"

namespace caulk::averagers {

inline const ManifestSchema& predictions_manifest_schema() {
  static const ManifestSchema schema{"hub",
                                     {"description", "kind"},
                                     {{"predictions", ManifestSchema::Key::SplitPaths, true},
                                      {"parameters", ManifestSchema::Key::Number, false},
                                      {"description", ManifestSchema::Key::String, false}}};
  return schema;
}

}  // namespace caulk::averagers
