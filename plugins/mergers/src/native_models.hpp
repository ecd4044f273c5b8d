// Running merged native MLP checkpoints on a dataset (predict.checkpoints, and scoring candidates
// in search.merge_coefficients) with the models family's runtime.
#pragma once
#include <filesystem>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/mlp/mlp.hpp"

namespace caulk::mergers {

// A split's model inputs as columns (input_dim x N). Throws Error naming the split when it has none.
mlp::Mat<float> split_inputs(const Dataset& data, const std::string& split);
// Loads a native MLP checkpoint; any other checkpoint is an Error saying that `who` needs caulk's
// native MLP format (the original problem appended).
mlp::Model<float> load_native(const std::filesystem::path& path, const std::string& model, const std::string& who);
// Class probabilities (or regression values), N x C in double. Throws Error when the model's
// input dimension does not match the split's.
Matrix predict(const mlp::Model<float>& m, const mlp::Mat<float>& X, const std::string& model, const std::string& split);

}  // namespace caulk::mergers
