// The TorchScript tests read models and PyTorch's own numbers written by make_torch_models.py
// (a ctest fixture) into CAULK_TORCH_MODELS_DIR; they skip, saying why, when it could not run.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "caulk/models/model.hpp"
#include "model_test_support.hpp"

namespace caulk::models::testing {

inline std::filesystem::path torch_models() { return CAULK_TORCH_MODELS_DIR; }

class TorchModels : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto skip = torch_models() / "SKIP";
    if (std::filesystem::exists(skip)) {
      std::ifstream in(skip);
      std::string reason((std::istreambuf_iterator<char>(in)), {});
      GTEST_SKIP() << reason;
    }
    if (!std::filesystem::exists(torch_models() / "cnn.pt"))
      GTEST_SKIP() << "no models in " << torch_models() << ": run the fixture test models.make_torch_models first";
  }

  static std::filesystem::path file(const std::string& name) { return torch_models() / name; }

  static std::unique_ptr<Model> open(const std::string& name, const std::string& feature_method = "embed",
                                     const std::filesystem::path& weights = {}) {
    ModelSource s;
    s.name = name;
    s.torchscript = file(name + ".pt");
    s.feature_method = feature_method;
    if (!weights.empty()) s.weights = weights.is_absolute() ? weights : file(weights.string());
    return open_model(s);
  }

  // The message of the DataError `f` throws ("" when it throws none).
  template <class F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace caulk::models::testing
