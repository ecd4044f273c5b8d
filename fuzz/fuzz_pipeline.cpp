// Pipeline files: TOML text parsed and validated against the real node types (the plugins built
// beside this program), without running anything.
#include <memory>

#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "fuzz_support.hpp"

namespace {
caulk::Registry* registry = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  registry = new caulk::Registry();  // lives for the whole process
  registry->load_plugins({caulk::Registry::bundled_plugin_dir()});
  // Files the seed pipelines name, so validation goes past the path checks.
  for (const char* name : {"labels.npy", "hub.toml", "truth.csv"}) caulk::fuzz::write_input(name, nullptr, 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto config = caulk::parse_pipeline_text(caulk::fuzz::as_text(data, size), caulk::fuzz::scratch_dir() / "pipeline.toml");
    auto pipeline = caulk::validate_pipeline(std::move(config), *registry);
    (void)caulk::pipeline_to_dot(pipeline);
  } catch (const caulk::Error&) {
  }
  return 0;
}
