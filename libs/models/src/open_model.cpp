// open_model: one manifest entry to a model of its family. The TorchScript and ONNX families are
// separate shared libraries loaded here on first use, so libtorch (about 0.7 s to load) and
// OpenCV DNN are paid only by processes that run such a model.
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>

#include "caulk/error.hpp"
#include "caulk/io/dtype.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/models/model.hpp"
#include "onnx_entry.hpp"
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

// A model family's shared library, loaded once per process on its first model and never unloaded
// (libtorch does not support being unloaded).
struct FamilyLibrary {
  void* open = nullptr;  // the entry point, an OpenTorchScriptFn or OpenOnnxFn
  std::string error;     // why it could not be loaded
};

struct FamilyContract {
  const char* family;        // "TorchScript", "ONNX"
  const char* library_name;  // the file beside libcaulk
  const char* variable;      // the environment variable that may name another file
  const char* version;       // the entry version this build expects
  const char* version_symbol;
  const char* open_symbol;
  const char* missing;  // how to get the library
};

FamilyLibrary load_family(const FamilyContract& c) {
  FamilyLibrary library;
  const char* chosen = std::getenv(c.variable);
  const fs::path path = chosen && *chosen ? fs::path(chosen) : libcaulk_folder() / c.library_name;
  if (!fs::exists(path)) {
    library.error = fmt::format("{} models need {}, which is not at {} ({}; or set {} to the library)", c.family, c.library_name,
                                path.string(), c.missing, c.variable);
    return library;
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    library.error = fmt::format("could not load {}: {}", path.string(), dlerror());
    return library;
  }
  auto version = reinterpret_cast<const char* (*)()>(dlsym(handle, c.version_symbol));
  if (!version || std::string(version()) != c.version) {
    library.error = fmt::format("{} is from another caulk build (entry version {}, expected {}): rebuild it", path.string(),
                                version ? version() : "none", c.version);
    return library;
  }
  library.open = dlsym(handle, c.open_symbol);
  if (!library.open) library.error = fmt::format("{} has no entry point {}", path.string(), c.open_symbol);
  return library;
}

const FamilyLibrary& torch_library() {
  static const FamilyLibrary library =
      load_family({"TorchScript", kTorchLibraryName, "CAULK_MODELS_TORCH", kTorchEntryVersion, kTorchVersionSymbol, kTorchOpenSymbol,
                   "caulk was built without libtorch: install libtorch-dev, e.g. scripts/install-deps.sh core, and rebuild"});
  return library;
}

const FamilyLibrary& onnx_library() {
  static const FamilyLibrary library =
      load_family({"ONNX", kOnnxLibraryName, "CAULK_MODELS_ONNX", kOnnxEntryVersion, kOnnxVersionSymbol, kOnnxOpenSymbol,
                   "caulk was built without OpenCV DNN: install libopencv-dnn-dev, e.g. scripts/install-deps.sh core, and rebuild"});
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
  if (!source.feature_output.empty() && source.onnx.empty())
    throw DataError((source.checkpoint.empty() ? source.torchscript : source.checkpoint).string(),
                    fmt::format("{}: feature_output applies to ONNX models (a TorchScript model names its features with "
                                "feature_method)",
                                entry_name(source)));
  std::unique_ptr<Model> model;
  if (!source.checkpoint.empty()) {
    if (!source.feature_method.empty())
      throw DataError(
          source.checkpoint.string(),
          fmt::format("{}: feature_method applies to TorchScript models; an MLP's features are its feature layer", entry_name(source)));
    model = MlpModel::open(source.name, source.checkpoint);
  } else if (!source.torchscript.empty()) {
    const FamilyLibrary& library = torch_library();
    if (!library.open) throw DataError(source.torchscript.string(), fmt::format("{}: {}", entry_name(source), library.error));
    model.reset(reinterpret_cast<OpenTorchScriptFn>(library.open)(source));
  } else {
    if (!source.weights.empty())
      throw DataError(source.weights.string(),
                      onnx_inference_only(source.name, source.onnx.string()) + " (`weights` cannot override an ONNX model's parameters)");
    const FamilyLibrary& library = onnx_library();
    if (!library.open) throw DataError(source.onnx.string(), fmt::format("{}: {}", entry_name(source), library.error));
    model.reset(reinterpret_cast<OpenOnnxFn>(library.open)(source));
  }
  if (!source.weights.empty()) load_weights(*model, source.weights, /*partial=*/true);
  return model;
}

}  // namespace caulk::models
