#include "onnx_graph.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace caulk::models::onnx {

namespace {

// One protobuf message's fields, read in order.
class Reader {
 public:
  explicit Reader(std::span<const unsigned char> bytes) : at_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  bool done() const { return at_ == end_; }

  // The next field's number and wire type.
  std::pair<std::uint64_t, int> key() {
    const std::uint64_t k = varint();
    const int wire = static_cast<int>(k & 7);
    if (k >> 3 == 0 || wire == 3 || wire == 4 || wire > 5) throw std::runtime_error("not a protobuf message (bad field key)");
    return {k >> 3, wire};
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ == end_) throw std::runtime_error("truncated protobuf message");
      const unsigned char b = *at_++;
      v |= std::uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("not a protobuf message (varint too long)");
  }
  std::span<const unsigned char> bytes() {
    const std::uint64_t n = varint();
    if (n > static_cast<std::uint64_t>(end_ - at_)) throw std::runtime_error("truncated protobuf message");
    std::span<const unsigned char> out(at_, static_cast<std::size_t>(n));
    at_ += n;
    return out;
  }
  std::string string() {
    const auto b = bytes();
    return std::string(b.begin(), b.end());
  }
  void skip(int wire) {
    std::size_t n = 0;
    switch (wire) {
      case 0:
        varint();
        return;
      case 1:
        n = 8;
        break;
      case 2:
        bytes();
        return;
      case 5:
        n = 4;
        break;
      default:
        throw std::runtime_error("not a protobuf message (bad wire type)");
    }
    if (n > static_cast<std::size_t>(end_ - at_)) throw std::runtime_error("truncated protobuf message");
    at_ += n;
  }

 private:
  const unsigned char* at_;
  const unsigned char* end_;
};

// Calls f(field, wire, reader) for each field of a message; f reads the value or skips it.
template <class F>
void each_field(std::span<const unsigned char> message, F&& f) {
  Reader r(message);
  while (!r.done()) {
    const auto [field, wire] = r.key();
    if (!f(field, wire, r)) r.skip(wire);
  }
}

ValueInfo read_value_info(std::span<const unsigned char> message) {
  ValueInfo v;
  each_field(message, [&](std::uint64_t field, int wire, Reader& r) {
    if (field == 1 && wire == 2) {
      v.name = r.string();
    } else if (field == 2 && wire == 2) {  // TypeProto
      each_field(r.bytes(), [&](std::uint64_t tf, int tw, Reader& tr) {
        if (tf != 1 || tw != 2) return false;  // only tensor_type
        each_field(tr.bytes(), [&](std::uint64_t f, int w, Reader& rr) {
          if (f == 1 && w == 0) {
            v.elem_type = static_cast<int>(rr.varint());
          } else if (f == 2 && w == 2) {  // TensorShapeProto
            v.has_shape = true;
            each_field(rr.bytes(), [&](std::uint64_t sf, int sw, Reader& sr) {
              if (sf != 1 || sw != 2) return false;
              std::int64_t dim = -1;
              each_field(sr.bytes(), [&](std::uint64_t df, int dw, Reader& dr) {
                if (df == 1 && dw == 0) {
                  dim = static_cast<std::int64_t>(dr.varint());
                  return true;
                }
                return false;
              });
              v.dims.push_back(dim > 0 ? dim : -1);
              return true;
            });
          } else {
            return false;
          }
          return true;
        });
        return true;
      });
    } else {
      return false;
    }
    return true;
  });
  return v;
}

// An attribute's name and integer value(s) (empty for attributes of other types).
std::pair<std::string, std::vector<std::int64_t>> read_int_attribute(std::span<const unsigned char> message) {
  std::pair<std::string, std::vector<std::int64_t>> a;
  each_field(message, [&](std::uint64_t f, int w, Reader& r) {
    if (f == 1 && w == 2) {
      a.first = r.string();
    } else if ((f == 3 || f == 8) && w == 0) {
      a.second.push_back(static_cast<std::int64_t>(r.varint()));
    } else if (f == 8 && w == 2) {  // packed
      Reader packed(r.bytes());
      while (!packed.done()) a.second.push_back(static_cast<std::int64_t>(packed.varint()));
    } else {
      return false;
    }
    return true;
  });
  return a;
}

}  // namespace

Graph read_graph(std::span<const unsigned char> bytes) {
  Graph g;
  bool has_graph = false;
  std::vector<ValueInfo> declared;
  std::vector<std::string> initializers;
  each_field(bytes, [&](std::uint64_t field, int wire, Reader& r) {
    if (field == 8 && wire == 2) {  // opset_import
      std::string domain;
      std::int64_t version = 0;
      each_field(r.bytes(), [&](std::uint64_t f, int w, Reader& rr) {
        if (f == 1 && w == 2)
          domain = rr.string();
        else if (f == 2 && w == 0)
          version = static_cast<std::int64_t>(rr.varint());
        else
          return false;
        return true;
      });
      if (domain.empty() || domain == "ai.onnx") g.opset = version;
      return true;
    }
    if (field != 7 || wire != 2) return false;
    has_graph = true;
    each_field(r.bytes(), [&](std::uint64_t gf, int gw, Reader& gr) {
      if (gw != 2) return false;
      if (gf == 1) {
        Node n;
        each_field(gr.bytes(), [&](std::uint64_t f, int w, Reader& nr) {
          if (w != 2) return false;
          if (f == 2)
            n.outputs.push_back(nr.string());
          else if (f == 3)
            n.name = nr.string();
          else if (f == 4)
            n.op_type = nr.string();
          else if (f == 5)
            n.ints.push_back(read_int_attribute(nr.bytes()));
          else
            return false;
          return true;
        });
        g.nodes.push_back(std::move(n));
      } else if (gf == 5) {
        each_field(gr.bytes(), [&](std::uint64_t f, int w, Reader& tr) {
          if (f != 8 || w != 2) return false;
          initializers.push_back(tr.string());
          return true;
        });
      } else if (gf == 11) {
        declared.push_back(read_value_info(gr.bytes()));
      } else if (gf == 12) {
        g.outputs.push_back(read_value_info(gr.bytes()).name);
      } else {
        return false;
      }
      return true;
    });
    return true;
  });
  if (!has_graph || g.nodes.empty() || g.outputs.empty()) throw std::runtime_error("not an ONNX model (no graph with nodes and outputs)");
  // Older exports list the weights among the inputs too.
  for (auto& v : declared)
    if (std::find(initializers.begin(), initializers.end(), v.name) == initializers.end()) g.inputs.push_back(std::move(v));
  if (g.inputs.empty()) throw std::runtime_error("the ONNX graph has no input");
  return g;
}

std::string elem_type_name(int elem_type) {
  static const std::array<const char*, 17> names{"UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",  "INT16",
                                                 "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16", "DOUBLE",
                                                 "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  return elem_type >= 0 && elem_type < int(names.size()) ? names[std::size_t(elem_type)] : "type " + std::to_string(elem_type);
}

}  // namespace caulk::models::onnx
