// The contract between open_model and the ONNX family's shared library (libs/models_onnx), which
// open_model loads with dlopen on first use, so only processes that run an ONNX model load
// OpenCV's DNN module.
#pragma once
#include <fmt/format.h>

#include <string>

#include "caulk/models/model.hpp"

namespace caulk::models {

inline constexpr const char* kOnnxLibraryName = "libcaulk_models_onnx.so";
// Bumped whenever model.hpp or this contract changes, so a stale library is refused by name.
inline constexpr const char* kOnnxEntryVersion = "caulk-models-onnx-1";
inline constexpr const char* kOnnxVersionSymbol = "caulk_models_onnx_version";
inline constexpr const char* kOnnxOpenSymbol = "caulk_models_onnx_open";

// Opens source.onnx. Returns a new model that the caller owns; throws DataError naming the model
// and the file.
using OpenOnnxFn = Model* (*)(const ModelSource& source);

// Why an ONNX model cannot be tuned, merged or analysed: one text for checkpoint_of (a node that
// needs a Checkpoint) and for the ONNX family's own refusals (a node that asks the model).
inline std::string onnx_inference_only(const std::string& name, const std::string& file) {
  return fmt::format(
      "model '{}' is an ONNX model ({}): ONNX models run for inference only (features and probabilities); "
      "export it as TorchScript to tune, merge or analyse it (docs/models.md)",
      name, file);
}

}  // namespace caulk::models
