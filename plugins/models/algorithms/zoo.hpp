// A synthetic hub of pre-trained models with a known answer (zoo.pretrain).
//
// Inputs x ~ N(0, I_P). The target task's classes depend on x through a K-dimensional latent
// u(x) = tanh(G x) (K << P): y = argmax(V u(x) + noise). A source task of relatedness rho uses the
// latent tanh(G_s x) with G_s = rho G + sqrt(1 - rho^2) R_s (R_s independent, same scale) and its
// own classes, so an MLP pre-trained on it learns features that carry the target's latent in
// proportion to rho. A regional source uses G where x_0 < 0 ("left") or x_0 >= 0 ("right") and an
// unrelated R_s elsewhere: which model is best then depends on the input region.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "caulk/mlp/training.hpp"

namespace caulk::mlp {

struct ZooModelSpec {
  std::string name;
  double relatedness = 0;   // rho in [0, 1]
  std::vector<int> hidden;  // hidden widths; the last one is the feature layer
  std::string region;       // "", "left" or "right"
  Activation activation = Activation::Relu;
};

struct ZooOptions {
  int inputs = 32;  // P
  int latent = 4;   // K
  int classes = 4;  // target classes
  int source_classes = 8;
  double label_noise = 0.1;  // std of the noise added to the class scores
  int source_samples = 4000;
  int train = 300, validation = 300, test = 2000;  // target samples
  int epochs = 20;                                 // pre-training epochs (Adam, batch 64, lr 1e-3)
  std::uint64_t seed = 0;
  std::vector<ZooModelSpec> models;
};

// The default hub: strongly, partly, weakly and un-related sources at several widths and depths,
// and a left and a right regional expert.
std::vector<ZooModelSpec> default_zoo_models();

struct ZooTask {
  Samples train, validation, test;
};

struct PretrainedModel {
  Model<float> model;
  double source_accuracy = 0;  // on held-out source samples
};

// The target task (deterministic in the seed).
ZooTask make_target_task(const ZooOptions& o);
// Pre-trains model `index` of o.models on its source task (deterministic in seed and index).
PretrainedModel pretrain_zoo_model(const ZooOptions& o, std::size_t index);

}  // namespace caulk::mlp
