// open_model: one manifest entry to a model of its family. The TorchScript family is a separate
// shared library loaded here on first use, so libtorch (about 0.7 s to load) is paid only by
// processes that run a TorchScript model.
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <mutex>

#include "caulk/error.hpp"
#include "caulk/io/dtype.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/models/model.hpp"
#include "torch_entry.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// libcaulk's folder: the build tree and the install tree both keep the TorchScript library there.
fs::path libcaulk_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&io::dtype_size), &info) == 0 || info.dli_fname == nullptr) return {};
  return fs::path(info.dli_fname).parent_path();
}

struct TorchLibrary {
  OpenTorchScriptFn open = nullptr;
  std::string error;  // why it could not be loaded
};

// Loaded once per process and never unloaded (libtorch does not support being unloaded).
const TorchLibrary& torch_library() {
  static TorchLibrary library;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* chosen = std::getenv("CAULK_MODELS_TORCH");
    const fs::path path = chosen && *chosen ? fs::path(chosen) : libcaulk_folder() / kTorchLibraryName;
    if (!fs::exists(path)) {
      library.error = fmt::format(
          "TorchScript models need {}, which is not at {} (caulk was built without libtorch: install libtorch-dev, "
          "e.g. scripts/install-deps.sh core, and rebuild; or set CAULK_MODELS_TORCH to the library)",
          kTorchLibraryName, path.string());
      return;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      library.error = fmt::format("could not load {}: {}", path.string(), dlerror());
      return;
    }
    auto version = reinterpret_cast<const char* (*)()>(dlsym(handle, kTorchVersionSymbol));
    if (!version || std::string(version()) != kTorchEntryVersion) {
      library.error = fmt::format("{} is from another caulk build (entry version {}, expected {}): rebuild it", path.string(),
                                  version ? version() : "none", kTorchEntryVersion);
      return;
    }
    library.open = reinterpret_cast<OpenTorchScriptFn>(dlsym(handle, kTorchOpenSymbol));
    if (!library.open) library.error = fmt::format("{} has no entry point {}", path.string(), kTorchOpenSymbol);
  });
  return library;
}

std::string entry_name(const ModelSource& s) {
  return s.where.empty() ? fmt::format("model '{}'", s.name) : fmt::format("{}: model '{}'", s.where, s.name);
}

}  // namespace

const ManifestSchema& model_hub_schema() {
  using Key = ManifestSchema::Key;
  static const ManifestSchema schema{"hub",
                                     {"description"},
                                     {{"checkpoint", Key::Path, false},
                                      {"torchscript", Key::Path, false},
                                      {"onnx", Key::Path, false},
                                      {"feature_method", Key::String, false},
                                      {"feature_output", Key::String, false},
                                      {"weights", Key::Path, false},
                                      {"description", Key::String, false},
                                      {"base", Key::Bool, false}}};
  return schema;
}

ModelSource source_of(const ManifestModel& entry) {
  ModelSource s;
  s.name = entry.name;
  s.checkpoint = entry.path("checkpoint");
  s.torchscript = entry.path("torchscript");
  s.onnx = entry.path("onnx");
  s.feature_method = entry.string("feature_method");
  s.feature_output = entry.string("feature_output");
  s.weights = entry.path("weights");
  s.where = entry.location();
  return s;
}

std::unique_ptr<Model> open_model(const ModelSource& source) {
  const int families = !source.checkpoint.empty() + !source.torchscript.empty() + !source.onnx.empty();
  if (families != 1)
    throw Error(fmt::format("{} must name exactly one of checkpoint, torchscript or onnx ({} given)", entry_name(source), families));
  std::unique_ptr<Model> model;
  if (!source.checkpoint.empty()) {
    if (!source.feature_method.empty())
      throw DataError(source.checkpoint.string(),
                      fmt::format("{}: feature_method applies to TorchScript models; an MLP's features are its feature layer",
                                  entry_name(source)));
    model = MlpModel::open(source.name, source.checkpoint);
  } else if (!source.torchscript.empty()) {
    const TorchLibrary& library = torch_library();
    if (!library.open) throw DataError(source.torchscript.string(), fmt::format("{}: {}", entry_name(source), library.error));
    model.reset(library.open(source));
  } else {
    throw DataError(source.onnx.string(), fmt::format("{}: ONNX models are not supported yet", entry_name(source)));
  }
  if (!source.weights.empty()) load_weights(*model, source.weights, /*partial=*/true);
  return model;
}

}  // namespace caulk::models
