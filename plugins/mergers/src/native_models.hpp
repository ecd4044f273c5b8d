// Running models on a dataset: merged or tuned models of any family (an MLP checkpoint, a
// TorchScript module with its weights) through the model interface (caulk/models/model.hpp), for
// predict.checkpoints and search.merge_coefficients; and native MLP checkpoints with the MLP runtime.
#pragma once
#include <filesystem>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/mlp/mlp.hpp"
#include "caulk/models/model.hpp"

namespace caulk::mergers {

// A split's model inputs as columns (input_dim x N). Throws Error naming the split when it has none.
mlp::Mat<float> split_inputs(const Dataset& data, const std::string& split);
// Loads a native MLP checkpoint; any other checkpoint is an Error saying that `who` needs caulk's
// native MLP format (the original problem appended).
mlp::Model<float> load_native(const std::filesystem::path& path, const std::string& model, const std::string& who);
// Class probabilities (or regression values), N x C in double. Throws Error when the model's
// input dimension does not match the split's.
Matrix predict(const mlp::Model<float>& m, const mlp::Mat<float>& X, const std::string& model, const std::string& split);

// A model of any family on a split, N x C in double: class probabilities (the softmax of its
// logits, in double) or regression values. An MLP runs with the MLP runtime as predict() does (so
// its numbers are those MLP runs always had); other families in batches of `batch_size` through
// the interface. Errors name the model, its file and the split's inputs.
Matrix predict_model(const models::ModelSource& source, const Dataset& data, const std::string& split, std::int64_t batch_size = 64);

}  // namespace caulk::mergers
