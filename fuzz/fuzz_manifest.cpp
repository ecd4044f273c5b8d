// Hub manifests (TOML): header, models, keys, split paths.
#include "caulk/manifest.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto manifest = caulk::parse_manifest_text(caulk::fuzz::as_text(data, size), caulk::fuzz::scratch_dir() / "hub.toml",
                                               caulk::hub_manifest_schema());
    for (const auto& m : manifest.models) (void)m.location();
  } catch (const caulk::Error&) {
  }
  return 0;
}
