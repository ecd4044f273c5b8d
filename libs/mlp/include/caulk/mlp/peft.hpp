// Parameter-efficient tuning modes (methods.md section 2): which parameters a tuned model has
// and which of them train.
//
// Every mode replaces the pre-trained head (the layers after feature_layer) by a new linear head
// sized for the target task, initialised as PyTorch's nn.Linear (uniform in +-1/sqrt(in)), seeded.
//   linear_probe: only the new head trains.
//   partial:      the last k layers train (the new head counts as one; k = 1 is a linear probe).
//   adapter:      a bottleneck h + up(act(down h)) of width r after a chosen layer (default: the
//                 feature layer), up = 0 so the model is unchanged at start; adapter and head train.
//   lora:         W + (alpha / r) B A on chosen layers (default: every layer up to the features),
//                 A uniform as nn.Linear, B = 0; LoRA factors and head train.
//   full:         everything trains.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp {

enum class PeftMode { LinearProbe, Partial, Adapter, Lora, Full };
PeftMode parse_peft_mode(const std::string& name);  // throws Error listing the modes
std::string peft_mode_name(PeftMode m);

struct PeftOptions {
  PeftMode mode = PeftMode::LinearProbe;
  int outputs = 2;                  // target classes, or target columns
  Output output = Output::Softmax;  // softmax for classification, identity for regression
  int partial_layers = 1;           // partial: how many of the last layers train
  int rank = 4;                     // adapter bottleneck width / LoRA rank
  int adapter_after = -1;           // adapter: after this layer; -1 = the feature layer
  std::vector<int> lora_layers;     // lora: layers; empty = 0..feature_layer
  double lora_alpha = 0;            // scale alpha / r; 0 means alpha = r (scale 1)
  std::uint64_t seed = 0;
};

struct TuningSetup {
  Model<float> model;
  std::vector<bool> trainable;  // per parameters() entry
  std::vector<std::string> trainable_names;
  std::size_t trainable_count = 0;  // scalars
};

// Throws Error on options that do not fit the model (k beyond the layers, an adapter after the
// head, LoRA on a layer that does not exist, rank < 1).
TuningSetup prepare_tuning(const Model<float>& pretrained, const PeftOptions& options);

// W <- W + scale B A for every LoRA, which is then removed (outputs unchanged up to rounding).
Model<float> fold_lora(const Model<float>& m);

}  // namespace caulk::mlp
