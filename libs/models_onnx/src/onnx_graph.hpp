// What caulk reads of an ONNX file itself, before OpenCV imports it: the graph's declared inputs
// (name, element type, dimensions), its outputs in order, and each node's name and outputs. OpenCV
// 4.6 does not expose the graph's outputs or declared shapes, which caulk needs to pick the
// logits output, check inputs and plan batches (docs/models.md, "ONNX models").
//
// A reader of the protobuf wire format restricted to those fields of onnx.proto: ModelProto
// graph = 7, opset_import = 8 (OperatorSetIdProto domain = 1, version = 2); GraphProto node = 1,
// initializer = 5 (TensorProto name = 8), input = 11, output = 12; NodeProto output = 2,
// name = 3, op_type = 4, attribute = 5 (AttributeProto name = 1, i = 3, ints = 8);
// ValueInfoProto name = 1, type = 2; TypeProto tensor_type = 1 (elem_type = 1, shape = 2);
// TensorShapeProto dim = 1 (dim_value = 1, dim_param = 2). Every other field is skipped.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace caulk::models::onnx {

inline constexpr int kElemFloat = 1;  // TensorProto.DataType FLOAT
inline constexpr int kElemInt64 = 7;  // TensorProto.DataType INT64

struct ValueInfo {
  std::string name;
  int elem_type = 0;
  std::vector<std::int64_t> dims;  // -1 for a symbolic (dim_param) or absent dimension
  bool has_shape = false;
};

struct Node {
  std::string name, op_type;
  std::vector<std::string> outputs;
  // Integer attributes (AttributeProto i = 3 or ints = 8) by name, e.g. AveragePool's pads.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> ints;
  const std::vector<std::int64_t>* attribute(const std::string& name) const {
    for (const auto& [n, v] : ints)
      if (n == name) return &v;
    return nullptr;
  }
};

struct Graph {
  std::vector<ValueInfo> inputs;  // the graph's inputs that are not initializers (weights)
  std::vector<std::string> outputs;
  std::vector<Node> nodes;
  std::int64_t opset = 0;  // the default domain's opset version (0: not stated)
};

// Parses an ONNX ModelProto. Throws std::runtime_error with what is wrong when the bytes are not
// one (not protobuf, or no graph with nodes and outputs).
Graph read_graph(std::span<const unsigned char> bytes);

// The element type's ONNX name ("FLOAT", "INT64", ...).
std::string elem_type_name(int elem_type);

}  // namespace caulk::models::onnx
