// A dataset split's model inputs (a .npy of any rank: N x P rows, N x C x H x W images, N x L
// token ids) fed to a model in batches.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/models/model.hpp"

namespace caulk::models {

// The inputs of one split: the mapped array (or an in-memory matrix), read batch by batch.
class ModelInputs {
 public:
  // Opens the file (or the in-memory matrix) of `inputs`; `what` names it in errors ("inputs of
  // split 'test'"). Throws DataError naming the file for an array a model cannot take: no rows
  // dimension (a scalar), a dtype that is neither a float nor an integer, or Fortran order in
  // more than two dimensions.
  static ModelInputs open(const ArrayFile& inputs, const std::string& what);
  // The inputs of a dataset's split (split_with_inputs, then open).
  static ModelInputs of_split(const Dataset& data, const std::string& split);

  std::int64_t rows() const { return shape_.empty() ? 0 : shape_.front(); }
  const std::vector<std::int64_t>& shape() const { return shape_; }  // {N, ...}
  io::DType dtype() const { return dtype_; }                         // as stored
  const std::string& describe() const { return describe_; }          // the file, or "<memory>"

  // The dtype a model is given: its own (input_dtype()) when it states one, else float32 for
  // float inputs and int64 (token ids) for integer ones.
  io::DType dtype_for(const Model& model) const;
  // Rows [first, first + count) as `dtype` (F32 or I64), copied into `buffer` (C order); the
  // returned batch points into `buffer`. Throws DataError when the file shrank meanwhile, or when
  // float values would have to become token ids.
  InputBatch batch(std::int64_t first, std::int64_t count, io::DType dtype, std::vector<std::byte>& buffer) const;

 private:
  std::vector<std::int64_t> shape_;
  io::DType dtype_ = io::DType::F64;
  std::string describe_;
  std::string what_;
  std::shared_ptr<const io::MappedFile> mapping_;        // file inputs
  const std::byte* data_ = nullptr;                      // C order
  std::shared_ptr<const std::vector<std::byte>> owned_;  // in-memory (as float64) or Fortran-order 2-D inputs
};

// A model's features (N x D) and/or outputs (N x C) on every row of `inputs`, in batches of
// `batch_size` rows run in parallel on the current pool (caulk/parallel.hpp). A sample's numbers
// do not depend on the pool's width: batches are fixed by `batch_size` and each fills its own
// rows. Checks the samples' shape against the model's input_shape() first (a model of flat samples,
// an MLP, takes samples of any shape holding as many values, flattened), and that the model
// returns one row per sample. Errors name the model, its file and the inputs' file.
Outputs run_in_batches(const Model& model, const ModelInputs& inputs, std::int64_t batch_size, bool want_features, bool want_outputs);

// Row-wise softmax of logits, in float64 (subtracting each row's maximum first).
Matrix softmax_rows(const RowMatrixF& logits);

// The split of `data` named `split`, which must have model inputs: otherwise an Error naming the
// split, its labels file and how to give inputs. Every node that runs models on a split checks
// through here, before any unit starts.
const DatasetSplit& split_with_inputs(const Dataset& data, const std::string& split);

}  // namespace caulk::models
