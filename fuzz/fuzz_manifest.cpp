// Hub manifests (TOML): header, models, keys, split paths — under the feature-hub schema and the
// checkpoint-hub schema (checkpoint, base), since one parser serves both.
#include "caulk/manifest.hpp"
#include "fuzz_support.hpp"

namespace {
void parse_with(std::string_view text, const caulk::ManifestSchema& schema) {
  try {
    auto manifest = caulk::parse_manifest_text(text, caulk::fuzz::scratch_dir() / "hub.toml", schema);
    for (const auto& m : manifest.models) (void)m.location();
  } catch (const caulk::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = caulk::fuzz::as_text(data, size);
  parse_with(text, caulk::hub_manifest_schema());
  parse_with(text, caulk::checkpoint_hub_schema());
  return 0;
}
