// The ONNX graph reader (libs/models_onnx/src/onnx_graph.cpp), a hand-written protobuf reader that
// sees every byte of a user's .onnx file before OpenCV does. Its contract is narrower than the
// other parsers': any input either gives a graph or throws std::runtime_error, which open_model
// turns into a DataError naming the file. Anything else (a crash, a sanitizer finding, a leak, an
// endless loop) is a finding.
#include <span>
#include <stdexcept>

#include "fuzz_support.hpp"
#include "onnx_graph.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto graph = caulk::models::onnx::read_graph(std::span<const unsigned char>(data, size));
    // What open_model reads of a graph: input types and shapes, node attributes.
    for (const auto& input : graph.inputs) (void)caulk::models::onnx::elem_type_name(input.elem_type);
    for (const auto& node : graph.nodes) (void)node.attribute("count_include_pad");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
