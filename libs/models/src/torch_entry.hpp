// The contract between open_model and the TorchScript family's shared library
// (libs/models_torch), which open_model loads with dlopen on first use.
#pragma once
#include "caulk/models/model.hpp"

namespace caulk::models {

inline constexpr const char* kTorchLibraryName = "libcaulk_models_torch.so";
// Bumped whenever model.hpp or this contract changes, so a stale library is refused by name.
inline constexpr const char* kTorchEntryVersion = "caulk-models-torch-1";
inline constexpr const char* kTorchVersionSymbol = "caulk_models_torch_version";
inline constexpr const char* kTorchOpenSymbol = "caulk_models_torch_open";

// Opens source.torchscript (source.weights is applied by open_model). Returns a new model that the
// caller owns; throws DataError naming the model and the file.
using OpenTorchScriptFn = Model* (*)(const ModelSource& source);

}  // namespace caulk::models
