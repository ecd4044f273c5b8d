// .safetensors reading and writing. Every file here is a byte image built by hand from the spec.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"
#include "io_test_support.hpp"

using namespace caulk;
using namespace caulk::io;
using caulk::test::data_error_message;
using caulk::test::le_f32;
using caulk::test::le_uint;
using caulk::test::read_bytes;
using caulk::test::ScratchDir;
using caulk::test::to_byte_vector;
using caulk::test::write_bytes;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// u64 little-endian header size, the header, the data.
std::string st_image(const std::string& header, const std::string& data) { return le_uint(header.size(), 8) + header + data; }

std::string as_string(std::span<const std::byte> bytes) { return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

std::vector<std::byte> bytes_of(const std::string& s) { return to_byte_vector(s); }

// The DataError from_bytes gives for an image; it must start with the image's name.
std::string image_error(const std::string& image) {
  auto bytes = std::make_shared<const std::vector<std::byte>>(bytes_of(image));
  std::string message = data_error_message([&] { SafetensorsFile::from_bytes(bytes, "mem.safetensors"); });
  EXPECT_THAT(message, StartsWith("mem.safetensors: "));
  return message;
}

// A header with one F32 tensor "a" of `shape` at `offsets`, followed by `data_bytes` bytes.
std::string one_tensor(const std::string& dtype, const std::string& shape, const std::string& offsets, std::size_t data_bytes) {
  return st_image(R"({"a":{"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}",
                  std::string(data_bytes, '\0'));
}

const std::string kTwoTensors = R"({"b":{"dtype":"I16","shape":[2],"data_offsets":[8,12]},"__metadata__":{"format":"pt"},)"
                                R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const std::string kTwoTensorsData = le_f32(1.5f) + le_f32(-2.0f) + le_uint(7, 2) + le_uint(0xFFFF, 2);

}  // namespace

TEST(Safetensors, ReadsAHandBuiltFile) {
  ScratchDir dir;
  write_bytes(dir / "m.safetensors", st_image(kTwoTensors, kTwoTensorsData));
  auto file = SafetensorsFile::open(dir / "m.safetensors");
  ASSERT_EQ(file.tensors().size(), 2u);
  EXPECT_EQ(file.tensors()[0].name, "a");  // in the order of their data
  EXPECT_EQ(file.tensors()[1].name, "b");
  const TensorInfo& a = file.at("a");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2}));
  EXPECT_EQ(a.begin, 0u);
  EXPECT_EQ(a.end, 8u);
  EXPECT_EQ(a.element_count(), 2u);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(file.to_float("a"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(file.to_double("b"), (std::vector<double>{7, -1}));
  EXPECT_EQ(as_string(file.bytes(file.at("b"))), le_uint(7, 2) + le_uint(0xFFFF, 2));
  EXPECT_EQ(file.find("missing"), nullptr);
  EXPECT_EQ(data_error_message([&] { file.at("missing"); }), (dir / "m.safetensors").string() + ": no tensor named 'missing'");
}

TEST(Safetensors, FromBytesWithPaddingScalarsAndEmptyTensors) {
  // Header padded with spaces; a 0-d tensor (one element) and an empty one (no bytes).
  std::string header = R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]}})";
  header.append(5, ' ');
  auto bytes = std::make_shared<const std::vector<std::byte>>(bytes_of(st_image(header, caulk::test::le_f64(2.5))));
  auto file = SafetensorsFile::from_bytes(bytes, "mem");
  EXPECT_EQ(file.to_double("s"), (std::vector<double>{2.5}));
  EXPECT_TRUE(file.to_float("e").empty());
  EXPECT_TRUE(file.metadata().empty());
  auto empty_header = std::make_shared<const std::vector<std::byte>>(bytes_of(st_image("{}", "")));
  EXPECT_TRUE(SafetensorsFile::from_bytes(empty_header, "mem").tensors().empty());
}

TEST(Safetensors, WritesTheReferenceLayout) {
  ScratchDir dir;
  write_safetensors(dir / "w.safetensors",
                    {{"a", DType::F32, {2}, bytes_of(le_f32(1.5f) + le_f32(-2.0f))},
                     {"b", DType::I16, {2}, bytes_of(le_uint(7, 2) + le_uint(0xFFFF, 2))}},
                    {{"format", "pt"}});
  // Compact JSON as serde writes it: metadata first, tensors in data order, padded to 8 bytes.
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"I16","shape":[2],"data_offsets":[8,12]}})";
  ASSERT_EQ(header.size(), 139u);
  header.append(5, ' ');
  EXPECT_EQ(read_bytes(dir / "w.safetensors"), st_image(header, kTwoTensorsData));
  EXPECT_THAT(dir.entries(), ElementsAre("w.safetensors"));
}

TEST(Safetensors, EveryTypeRoundTrips) {
  struct Case {
    DType dtype;
    std::string bytes;  // three elements
    std::vector<double> values;
  };
  const std::vector<Case> cases = {
      {DType::BOOL, std::string("\x01\x00\x01", 3), {1, 0, 1}},
      {DType::U8, "\xFF\x01\x02", {255, 1, 2}},
      {DType::I8, "\xFF\x01\x80", {-1, 1, -128}},
      {DType::U16, le_uint(65535, 2) + le_uint(2, 2) + le_uint(3, 2), {65535, 2, 3}},
      {DType::I16, le_uint(65535, 2) + le_uint(2, 2) + le_uint(3, 2), {-1, 2, 3}},
      {DType::U32, le_uint(4294967295u, 4) + le_uint(2, 4) + le_uint(3, 4), {4294967295.0, 2, 3}},
      {DType::I32, le_uint(4294967295u, 4) + le_uint(2, 4) + le_uint(3, 4), {-1, 2, 3}},
      {DType::U64, le_uint(1ull << 62, 8) + le_uint(2, 8) + le_uint(3, 8), {4611686018427387904.0, 2, 3}},
      {DType::I64, le_uint(~0ull, 8) + le_uint(2, 8) + le_uint(3, 8), {-1, 2, 3}},
      {DType::F16, le_uint(0x3C00, 2) + le_uint(0xC000, 2) + le_uint(0x7BFF, 2), {1, -2, 65504}},
      {DType::BF16, le_uint(0x3F80, 2) + le_uint(0xC000, 2) + le_uint(0x4049, 2), {1, -2, 3.140625}},
      {DType::F32, le_f32(1) + le_f32(-2) + le_f32(0.25f), {1, -2, 0.25}},
      {DType::F64, caulk::test::le_f64(1) + caulk::test::le_f64(-2) + caulk::test::le_f64(1e300), {1, -2, 1e300}},
  };
  ScratchDir dir;
  std::vector<Tensor> tensors;
  for (const auto& c : cases) tensors.push_back({std::string(dtype_name(c.dtype)), c.dtype, {3}, bytes_of(c.bytes)});
  write_safetensors(dir / "all.safetensors", tensors);
  auto file = SafetensorsFile::open(dir / "all.safetensors");
  ASSERT_EQ(file.tensors().size(), cases.size());
  for (const auto& c : cases) {
    const std::string name(dtype_name(c.dtype));
    EXPECT_EQ(file.at(name).dtype, c.dtype);
    EXPECT_EQ(as_string(file.bytes(file.at(name))), c.bytes) << name;
    EXPECT_EQ(file.to_double(name), c.values) << name;
  }
}

TEST(SafetensorsWriter, StreamsInDeclaredOrder) {
  ScratchDir dir;
  const auto path = dir / "s.safetensors";
  SafetensorsWriter writer(path, {{"x", DType::F32, {2}}, {"y", DType::U8, {3}}});
  const std::string x = le_f32(1) + le_f32(2);
  EXPECT_THAT(data_error_message([&] { writer.write("y", "abc", 3); }), HasSubstr("written out of order: 'x' is next"));
  EXPECT_THAT(data_error_message([&] { writer.write("x", x.data(), 4); }),
              HasSubstr("tensor 'x': 4 bytes given, but shape [2] of F32 needs 8"));
  writer.write("x", x.data(), x.size());
  EXPECT_THAT(data_error_message([&] { writer.commit(); }), HasSubstr("only 1 of the 2 declared tensors were written ('y' is next)"));
  EXPECT_FALSE(std::filesystem::exists(path));
  writer.write("y", "abc", 3);
  EXPECT_THAT(data_error_message([&] { writer.write("z", "", 0); }), HasSubstr("every declared tensor has been written"));
  writer.commit();
  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.to_float("x"), (std::vector<float>{1, 2}));
  EXPECT_EQ(as_string(file.bytes(file.at("y"))), "abc");
}

TEST(SafetensorsWriter, AbandonedWriterLeavesNothing) {
  ScratchDir dir;
  {
    SafetensorsWriter writer(dir / "s.safetensors", {{"x", DType::U8, {1}}});
    writer.write("x", "a", 1);
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWriter, RefusesBadDeclarations) {
  ScratchDir dir;
  const auto path = dir / "s.safetensors";
  EXPECT_THAT(data_error_message([&] {
                SafetensorsWriter(path, {{"x", DType::U8, {1}}, {"x", DType::U8, {1}}});
              }),
              HasSubstr("tensor 'x' is declared twice"));
  EXPECT_THAT(data_error_message([&] {
                SafetensorsWriter(path, {{"__metadata__", DType::U8, {1}}});
              }),
              HasSubstr("cannot be named '__metadata__'"));
  EXPECT_THAT(data_error_message([&] { SafetensorsWriter(path, {{"x", DType::F64, {1ull << 62}}}); }), HasSubstr("too large"));
  EXPECT_THAT(data_error_message([&] {
                SafetensorsWriter(path, {{"x", DType::U8, {1ull << 63}}, {"y", DType::U8, {1ull << 63}}});
              }),
              HasSubstr("too large"));
  EXPECT_THAT(data_error_message([&] { write_safetensors(path, {{"bad\xFF", DType::U8, {0}, {}}}); }), HasSubstr("not valid UTF-8"));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsErrors, FileLevel) {
  ScratchDir dir;
  const auto missing = dir / "missing.safetensors";
  EXPECT_EQ(data_error_message([&] { SafetensorsFile::open(missing); }), missing.string() + ": cannot open: no such file");
  write_bytes(dir / "empty.safetensors", "");
  EXPECT_EQ(data_error_message([&] { SafetensorsFile::open(dir / "empty.safetensors"); }),
            (dir / "empty.safetensors").string() + ": empty file");
  EXPECT_THAT(image_error(std::string("\x02\x00\x00", 3)), HasSubstr("truncated: 3 bytes is too short for the 8-byte header size"));
  EXPECT_THAT(image_error(le_uint(1000, 8) + "{}"), HasSubstr("header size 1000 is larger than the rest of the file (2 bytes)"));
  EXPECT_THAT(image_error(le_uint(100000001, 8) + "{}"), HasSubstr("header size 100000001 exceeds the limit of 100000000 bytes"));
  EXPECT_THAT(image_error(le_uint(~0ull, 8) + "{}"), HasSubstr("exceeds the limit"));
}

TEST(SafetensorsErrors, HeaderJson) {
  EXPECT_THAT(image_error(st_image("{not json", "")), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(image_error(st_image("", "")), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(image_error(st_image("{\"a\": \"\xFF\"}", "")), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(image_error(st_image("[1, 2]", "")), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(image_error(st_image(R"({"a": 3})", "")), HasSubstr("tensor 'a': entry is not an object: 3"));
  EXPECT_THAT(image_error(st_image(
                  R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "ab")),
              HasSubstr("the header names 'a' twice"));
  EXPECT_THAT(image_error(st_image(R"({"__metadata__":{"x":1}})", "")), HasSubstr("'__metadata__' entry 'x' is not a string: 1"));
  EXPECT_THAT(image_error(st_image(R"({"__metadata__":[]})", "")), HasSubstr("'__metadata__' is not an object of strings"));
  EXPECT_THAT(image_error(st_image(R"({"a":{"x":)" + std::string(50, '[') + std::string(50, ']') + "}}", "")),
              HasSubstr("nests more than 8 levels deep"));
}

TEST(SafetensorsErrors, TensorEntries) {
  EXPECT_THAT(image_error(st_image(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd")), HasSubstr("tensor 'a' has no 'dtype' field"));
  EXPECT_THAT(image_error(st_image(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "abcd")), HasSubstr("tensor 'a' has no 'shape' field"));
  EXPECT_THAT(image_error(st_image(R"({"a":{"dtype":"F32","shape":[1]}})", "abcd")), HasSubstr("tensor 'a' has no 'data_offsets' field"));
  EXPECT_THAT(image_error(one_tensor(R"("F8_E4M3")", "[1]", "[0,1]", 1)), HasSubstr("tensor 'a' has unsupported dtype \"F8_E4M3\""));
  EXPECT_THAT(image_error(one_tensor("32", "[1]", "[0,4]", 4)), HasSubstr("'dtype' is not a string: 32"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[-1]", "[0,4]", 4)), HasSubstr("a 'shape' dimension is negative: -1"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1.5]", "[0,4]", 4)),
              HasSubstr("a 'shape' dimension is not a non-negative integer: 1.5"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "4", "[0,4]", 4)), HasSubstr("'shape' is not a list: 4"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[0]", 4)), HasSubstr("'data_offsets' is not a list of two offsets: [0]"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[0,\"4\"]", 4)), HasSubstr("'data_offsets' end is not a non-negative integer"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[-4,0]", 4)), HasSubstr("'data_offsets' begin is negative"));
}

TEST(SafetensorsErrors, OffsetsAndSizes) {
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[0,18446744073709551615]", 4)),
              HasSubstr("tensor 'a': data_offsets [0, 18446744073709551615] run past the end of the data (4 bytes)"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[18446744073709551615,4]", 4)),
              HasSubstr("data_offsets [18446744073709551615, 4] end before they begin"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[0,18446744073709551616]", 4)), HasSubstr("not a non-negative integer"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[1]", "[4,0]", 4)), HasSubstr("data_offsets [4, 0] end before they begin"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[3]", "[0,8]", 8)),
              HasSubstr("tensor 'a': shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] hold 8"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[4294967296,4294967296,4294967296]", "[0,0]", 0)),
              HasSubstr("shape [4294967296, 4294967296, 4294967296] of F32 has too many elements to address"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[2]", "[0,8]", 10)),
              HasSubstr("the data section has 10 bytes but the tensors cover only 8 (trailing bytes)"));
  EXPECT_THAT(image_error(one_tensor(R"("F32")", "[2]", "[4,12]", 12)),
              HasSubstr("a hole in the data: bytes [0, 4] belong to no tensor (before 'a')"));
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":)";
  EXPECT_THAT(image_error(st_image(two + "[4,12]}}", std::string(12, '\0'))), HasSubstr("tensors 'a' [0, 8] and 'b' [4, 12] overlap"));
  EXPECT_THAT(image_error(st_image(two + "[12,20]}}", std::string(20, '\0'))),
              HasSubstr("a hole in the data: bytes [8, 12] belong to no tensor (before 'b')"));
  EXPECT_THAT(image_error(st_image(two + "[0,8]}}", std::string(8, '\0'))), HasSubstr("tensors 'a' [0, 8] and 'b' [0, 8] overlap"));
}

TEST(SafetensorsErrors, EveryPrefixAndRandomDamageIsADataError) {
  // from_bytes is the fuzzing entry point: arbitrary bytes, no disk, only DataError.
  const std::string good = st_image(kTwoTensors, kTwoTensorsData);
  auto parse = [](const std::string& image) {
    SafetensorsFile::from_bytes(std::make_shared<const std::vector<std::byte>>(bytes_of(image)), "mem");
  };
  parse(good);
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_THAT(data_error_message([&] { parse(good.substr(0, n)); }), StartsWith("mem: ")) << n;
  std::mt19937 random(99);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = good;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) damaged[random() % damaged.size()] = static_cast<char>(random() & 0xFF);
    try {
      parse(damaged);
    } catch (const DataError& e) {
      ASSERT_THAT(std::string(e.what()), StartsWith("mem: "));
    }
  }
  EXPECT_THAT(data_error_message([&] { SafetensorsFile::from_bytes(nullptr, "mem"); }), HasSubstr("empty file"));
}
