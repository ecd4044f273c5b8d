// .safetensors reader from memory: header length, JSON header, dtypes, shapes, offsets, metadata;
// then every tensor is converted (so a bad offset shows as an out-of-bounds read).
#include <memory>
#include <vector>

#include "caulk/io/safetensors.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes =
      std::make_shared<std::vector<std::byte>>(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    auto file = caulk::io::SafetensorsFile::from_bytes(bytes, "fuzz.safetensors");
    for (const auto& t : file.tensors()) {
      (void)file.bytes(t);
      if (t.byte_size() <= (1u << 20)) (void)file.to_double(t.name);
    }
  } catch (const caulk::Error&) {
  }
  return 0;
}
