// MLP checkpoints as .safetensors (docs/models.md): tensors layers.{l}.weight (out x in) and
// layers.{l}.bias, optional adapters.{l}.{down,up}.{weight,bias} and lora.{l}.{A,B}, and
// __metadata__ {format = "caulk.mlp", activation, feature_layer, output, ...}.
//
// A tuned model can also be saved as a delta: only the tensors tuning produced (the new head, the
// trained layers, adapters, LoRA) with metadata "base" naming the pre-trained checkpoint
// (relative to the delta's folder); loading resolves it.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "caulk/io/durable.hpp"
#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp {

inline constexpr const char* kFormat = "caulk.mlp";

// Throws DataError naming the file and the tensor or metadata key at fault (missing tensor, wrong
// shape, unknown tensor, unknown activation, a feature layer out of range, a bad base).
Model<float> load_model(const std::filesystem::path& path);

// Every tensor as float32; `metadata` is added to the structural keys. Atomic; an existing file is
// treated as `existing` says (caulk/io/durable.hpp).
void save_model(const std::filesystem::path& path, const Model<float>& m, const std::map<std::string, std::string>& metadata = {},
                io::OnExisting existing = io::OnExisting::Replace);

// Writes only the tensors named in `tensors` (checkpoint names, see parameters()) with metadata
// base = `base` (stored relative to the delta's folder when possible).
void save_delta(const std::filesystem::path& path, const Model<float>& m, const std::vector<std::string>& tensors,
                const std::filesystem::path& base, const std::map<std::string, std::string>& metadata = {});

// Writes a model-shaped set of values (a Fisher diagonal) under the model's tensor names. Atomic.
void save_tensors(const std::filesystem::path& path, const Model<double>& values, const std::map<std::string, std::string>& metadata);

}  // namespace caulk::mlp
