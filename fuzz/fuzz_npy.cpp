// .npy reader: header (magic, version, dict, dtype, shape, order), data size, non-finite check,
// conversion of every element (so out-of-bounds reads show).
#include "caulk/artifacts.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = caulk::fuzz::write_input("input.npy", data, size);
  try {
    caulk::ArrayFile file{path, {}};
    (void)file.shape();
    caulk::MatrixView view = file.open("fuzz input");
    caulk::RowMatrix block;
    for (std::size_t row = 0; row < view.rows(); row += 256) view.rows_to(row, std::min<std::size_t>(256, view.rows() - row), block);
  } catch (const caulk::Error&) {
  }
  return 0;
}
