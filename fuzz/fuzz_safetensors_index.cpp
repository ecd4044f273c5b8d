// The sharded checkpoint index (model.safetensors.index.json) over two fixed, valid shards: the
// input is the index's JSON text. Every tensor the index opens is read.
#include <vector>

#include "caulk/io/safetensors.hpp"
#include "fuzz_support.hpp"

namespace {
caulk::io::Tensor f32_tensor(const std::string& name, std::vector<std::size_t> shape, const std::vector<float>& values) {
  caulk::io::Tensor t{name, caulk::io::DType::F32, std::move(shape), {}};
  const auto* bytes = reinterpret_cast<const std::byte*>(values.data());
  t.data.assign(bytes, bytes + values.size() * sizeof(float));
  return t;
}

void write_shards() {
  const auto dir = caulk::fuzz::scratch_dir();
  caulk::io::write_safetensors(dir / "model-00001-of-00002.safetensors", {f32_tensor("layers.0.weight", {2, 2}, {1, 2, 3, 4})},
                               {{"format", "pt"}});
  caulk::io::write_safetensors(dir / "model-00002-of-00002.safetensors", {f32_tensor("layers.0.bias", {2}, {5, 6})});
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_shards();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto index = caulk::fuzz::write_input("model.safetensors.index.json", data, size);
  try {
    auto checkpoint = caulk::io::Checkpoint::open(index);
    for (const auto& name : checkpoint.names()) (void)checkpoint.to_float(name);
  } catch (const caulk::Error&) {
  }
  return 0;
}
