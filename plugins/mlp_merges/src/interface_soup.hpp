// merge.greedy_soup of models that are not caulk MLPs (TorchScript modules with their weights),
// through the model interface (caulk/models/model.hpp): each soup is the module of the first
// ingredient with the uniform average of the ingredients' parameters, run on the held-out split.
#pragma once
#include <filesystem>
#include <string>

#include "caulk/context.hpp"
#include "caulk/io/safetensors.hpp"
#include "mlp_merges/algorithms/greedy_soup.hpp"
#include "mlp_merges/src/common.hpp"

namespace caulk::mlp_merges {

struct InterfaceSoup {
  GreedySoupSteps steps;
  std::vector<io::Tensor> tensors;  // the final soup's parameters (PyTorch's names, float32)
  std::filesystem::path module;     // the soup's module and feature method (the first ingredient's)
  std::string feature_method;
};

// Opens every ingredient (all TorchScript, one feature method, the same parameter names and
// shapes, else an Error naming the models) and scores each, then the greedy soups, on `split` by
// `metric`.
InterfaceSoup interface_greedy_soup(const NodeContext& ctx, const LoadedModels& in, const Dataset& data, const std::string& split,
                                    SoupMetric metric);

}  // namespace caulk::mlp_merges
