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
#include <filesystem>
#include <map>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/manifest.hpp"

namespace caulk::averagers {

// What predictions.load publishes: a plain Predictions to every other node, plus the file each
// model's split was read from, so that the averagers' messages about a value can name its file.
class LoadedPredictions : public Predictions {
 public:
  std::map<std::string, std::map<std::string, std::filesystem::path>> files;  // model -> split -> file
};

inline const ManifestSchema& predictions_manifest_schema() {
  static const ManifestSchema schema{"hub",
                                     {"description", "kind"},
                                     {{"predictions", ManifestSchema::Key::SplitPaths, true},
                                      {"parameters", ManifestSchema::Key::Number, false},
                                      {"description", ManifestSchema::Key::String, false}}};
  return schema;
}

}  // namespace caulk::averagers
