// .npy reading and writing. Every file here is a byte image built by hand from the format spec.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "io_test_support.hpp"

using namespace caulk;
using namespace caulk::io;
using caulk::test::data_error_message;
using caulk::test::le_f32;
using caulk::test::le_f64;
using caulk::test::le_uint;
using caulk::test::read_bytes;
using caulk::test::ScratchDir;
using caulk::test::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// Magic, version, little-endian header length, the dict (padded with spaces so the data starts on
// a 64-byte boundary unless `pad` is false), a newline, then the data.
std::string npy_image(const std::string& dict, const std::string& data, int major = 1, bool pad = true) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while (pad && (prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string image = "\x93NUMPY";
  image += static_cast<char>(major);
  image += '\0';
  image += le_uint(header.size(), major == 1 ? 2 : 4);
  return image + header + data;
}

std::string dict_of(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

std::string f32s(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out += le_f32(v);
  return out;
}
std::string f64s(std::initializer_list<double> values) {
  std::string out;
  for (double v : values) out += le_f64(v);
  return out;
}

class Npy : public ::testing::Test {
 protected:
  std::filesystem::path file(const std::string& bytes, const std::string& name = "a.npy") {
    auto path = dir_ / name;
    write_bytes(path, bytes);
    return path;
  }
  // The DataError message for opening `bytes` as a .npy file; it must start with the file's path.
  std::string open_error(const std::string& bytes) {
    auto path = file(bytes, "bad.npy");
    std::string message = data_error_message([&] { NpyArray::open(path); });
    EXPECT_THAT(message, StartsWith(path.string() + ": "));
    return message;
  }
  ScratchDir dir_;
};

}  // namespace

TEST_F(Npy, Float32COrderIsViewedInPlace) {
  auto path = file(npy_image(dict_of("<f4", "(2, 3)"), f32s({1, 2, 3, 4, 5, 6})));
  MatrixView view;
  std::shared_ptr<const MappedFile> map;
  {
    auto array = NpyArray::open(path);
    EXPECT_EQ(array.dtype(), DType::F32);
    EXPECT_EQ(array.shape(), (std::vector<std::size_t>{2, 3}));
    EXPECT_FALSE(array.fortran_order());
    EXPECT_EQ(array.size(), 6u);
    view = array.matrix();
    map = array.mapping();
  }
  // The array is gone; the view still owns the mapping and points into it: no copy was made.
  ASSERT_EQ(view.scalar_type(), ScalarType::F32);
  const auto* p = static_cast<const std::byte*>(view.data());
  EXPECT_GE(p, map->data());
  EXPECT_LT(p, map->data() + map->size());
  EXPECT_EQ(p, map->data() + 128);  // 10-byte preamble + 60-byte dict, padded to 64
  EXPECT_TRUE(view.row_major());
  EXPECT_EQ(view.rows(), 2u);
  EXPECT_EQ(view.cols(), 3u);
  EXPECT_EQ(view(0, 2), 3.0);
  EXPECT_EQ(view(1, 0), 4.0);
}

TEST_F(Npy, FortranOrderIsReadColumnMajor) {
  // The matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
  auto path = file(npy_image(dict_of("<f8", "(2, 3)", true), f64s({1, 4, 2, 5, 3, 6})));
  auto array = NpyArray::open(path);
  EXPECT_TRUE(array.fortran_order());
  MatrixView view = array.matrix();
  EXPECT_EQ(view.data(), array.data());
  EXPECT_FALSE(view.row_major());
  Matrix expected(2, 3);
  expected << 1, 2, 3, 4, 5, 6;
  EXPECT_EQ(view.to_double(), expected);

  auto f32 = NpyArray::open(file(npy_image(dict_of("<f4", "(2, 3)", true), f32s({1, 4, 2, 5, 3, 6})), "f.npy"));
  EXPECT_EQ(f32.matrix().to_double(), expected);
}

TEST_F(Npy, OneDimensionalIsAColumn) {
  auto array = NpyArray::open(file(npy_image(dict_of("<f8", "(3,)"), f64s({7, 8, 9}))));
  MatrixView view = array.matrix();
  EXPECT_EQ(view.rows(), 3u);
  EXPECT_EQ(view.cols(), 1u);
  EXPECT_EQ(view(2, 0), 9.0);
  EXPECT_EQ(view.data(), array.data());
}

TEST_F(Npy, OtherTypesAreConvertedToFloat64) {
  struct Case {
    const char* descr;
    DType dtype;
    std::string data;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {"<f2", DType::F16, le_uint(0x3C00, 2) + le_uint(0xC000, 2) + le_uint(0x3800, 2), {1, -2, 0.5}},
      {"|i1", DType::I8, std::string("\x80\x7F\x00", 3), {-128, 127, 0}},
      {"<i1", DType::I8, "\xFF\x01\x02", {-1, 1, 2}},
      {"|u1", DType::U8, "\xFF\x01\x02", {255, 1, 2}},
      {"<i2", DType::I16, le_uint(0xFFFF, 2) + le_uint(300, 2) + le_uint(0x8000, 2), {-1, 300, -32768}},
      {"<u2", DType::U16, le_uint(0xFFFF, 2) + le_uint(300, 2) + le_uint(0x8000, 2), {65535, 300, 32768}},
      {"<i4", DType::I32, le_uint(0xFFFFFFFE, 4) + le_uint(70000, 4) + le_uint(0, 4), {-2, 70000, 0}},
      {"<u4", DType::U32, le_uint(0xFFFFFFFE, 4) + le_uint(70000, 4) + le_uint(0, 4), {4294967294.0, 70000, 0}},
      {"<i8", DType::I64, le_uint(~0ull, 8) + le_uint(1ull << 40, 8) + le_uint(5, 8), {-1, 1099511627776.0, 5}},
      {"<u8", DType::U64, le_uint(1ull << 63, 8) + le_uint(1ull << 40, 8) + le_uint(5, 8), {9223372036854775808.0, 1099511627776.0, 5}},
      {"|b1", DType::BOOL, std::string("\x00\x01\x01", 3), {0, 1, 1}},
  };
  for (const auto& c : cases) {
    auto array = NpyArray::open(file(npy_image(dict_of(c.descr, "(3,)"), c.data)));
    EXPECT_EQ(array.dtype(), c.dtype) << c.descr;
    MatrixView view = array.matrix();
    EXPECT_EQ(view.scalar_type(), ScalarType::F64) << c.descr;
    ASSERT_EQ(view.rows(), 3u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(view(i, 0), c.expected[i]) << c.descr << " element " << i;
  }
}

TEST_F(Npy, ConvertedFortranOrderKeepsItsLayout) {
  // [[1, 2], [3, 4]] as int16, column by column.
  auto path = file(npy_image(dict_of("<i2", "(2, 2)", true), le_uint(1, 2) + le_uint(3, 2) + le_uint(2, 2) + le_uint(4, 2)));
  Matrix expected(2, 2);
  expected << 1, 2, 3, 4;
  EXPECT_EQ(NpyArray::open(path).matrix().to_double(), expected);
}

TEST_F(Npy, ZeroOrMoreThanTwoDimensionsAreNotMatrices) {
  auto scalar = NpyArray::open(file(npy_image(dict_of("<f8", "()"), f64s({3})), "s.npy"));
  EXPECT_EQ(scalar.size(), 1u);
  EXPECT_THAT(data_error_message([&] { scalar.matrix(); }), HasSubstr("a 0-d array"));
  auto cube = NpyArray::open(file(npy_image(dict_of("<f4", "(1, 2, 1)"), f32s({1, 2})), "c.npy"));
  EXPECT_THAT(data_error_message([&] { cube.matrix(); }),
              AllOf(StartsWith((dir_ / "c.npy").string() + ": "), HasSubstr("a 3-d array of shape (1, 2, 1)")));
}

TEST_F(Npy, ReadsFormats2And3AndAnyPadding) {
  auto v2 = NpyArray::open(file(npy_image(dict_of("<f4", "(2,)"), f32s({1, 2}), 2), "v2.npy"));
  EXPECT_EQ(v2.matrix()(1, 0), 2.0);
  auto v3 = NpyArray::open(file(npy_image(dict_of("<f4", "(2,)"), f32s({1, 2}), 3), "v3.npy"));
  EXPECT_EQ(v3.matrix()(1, 0), 2.0);
  // No padding, double quotes, Python 2 longs, another key order, no trailing comma: the data
  // lands on an odd offset, so the float32 view must be an aligned copy with the same values.
  std::string dict = "{\"shape\": (2L, 1L), 'fortran_order':False,'descr' : \"<f4\"}";
  if ((10 + dict.size() + 1) % 2 == 0) dict += ' ';
  auto odd = NpyArray::open(file(npy_image(dict, f32s({1.5f, -2.5f}), 1, false), "odd.npy"));
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(odd.data()) % 2, 1u);
  MatrixView view = odd.matrix();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(view.data()) % alignof(float), 0u);
  EXPECT_EQ(view(0, 0), 1.5);
  EXPECT_EQ(view(1, 0), -2.5);
}

TEST_F(Npy, ReadHeaderOnly) {
  auto path = file(npy_image(dict_of("<i4", "(0, 5)"), ""));
  NpyHeader h = NpyArray::read_header(path);
  EXPECT_EQ(h.dtype, DType::I32);
  EXPECT_EQ(h.shape, (std::vector<std::size_t>{0, 5}));
  EXPECT_EQ(h.data_offset, 128u);
  EXPECT_EQ(h.element_count(), 0u);
  EXPECT_EQ(NpyArray::open(path).matrix().rows(), 0u);
}

TEST_F(Npy, ToInt64) {
  EXPECT_EQ(NpyArray::open(file(npy_image(dict_of("<i8", "(2,)"), le_uint(5, 8) + le_uint(~2ull, 8)))).to_int64(),
            (std::vector<std::int64_t>{5, -3}));
  EXPECT_EQ(NpyArray::open(file(npy_image(dict_of("|b1", "(2, 1)"), std::string("\x01\x00", 2)))).to_int64(),
            (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(NpyArray::open(file(npy_image(dict_of("<f8", "(2,)"), f64s({1, -2})))).to_int64(), (std::vector<std::int64_t>{1, -2}));
  auto fractional = NpyArray::open(file(npy_image(dict_of("<f8", "(2,)"), f64s({1, 2.5}))));
  EXPECT_THAT(data_error_message([&] { fractional.to_int64(); }), HasSubstr("element 1 is 2.5"));
  auto huge = NpyArray::open(file(npy_image(dict_of("<f8", "(1,)"), f64s({1e19}))));
  EXPECT_THAT(data_error_message([&] { huge.to_int64(); }), HasSubstr("not a whole number"));
  auto big = NpyArray::open(file(npy_image(dict_of("<u8", "(1,)"), le_uint(1ull << 63, 8))));
  EXPECT_THAT(data_error_message([&] { big.to_int64(); }), HasSubstr("too large for int64"));
  auto table = NpyArray::open(file(npy_image(dict_of("<i8", "(1, 2)"), le_uint(1, 8) + le_uint(2, 8))));
  EXPECT_THAT(data_error_message([&] { table.to_int64(); }), HasSubstr("expected a vector"));
}

TEST_F(Npy, MissingAndEmptyFiles) {
  auto missing = dir_ / "missing.npy";
  EXPECT_EQ(data_error_message([&] { NpyArray::open(missing); }), missing.string() + ": cannot open: no such file");
  EXPECT_EQ(open_error(""), (dir_ / "bad.npy").string() + ": empty file");
}

TEST_F(Npy, MalformedPreamble) {
  EXPECT_THAT(open_error("PK\x03\x04 not numpy"),
              HasSubstr("not a .npy file: it does not start with the .npy magic (\\x93NUMPY); it is a ZIP archive"));
  EXPECT_THAT(open_error("\x93NUMPZ\x01"), HasSubstr("does not start with the .npy magic"));
  EXPECT_THAT(open_error("\x93NUM"), HasSubstr("truncated header"));
  EXPECT_THAT(open_error("\x93NUMPY\x01"), HasSubstr("truncated header: the file ends after 7 bytes"));
  EXPECT_THAT(open_error(std::string("\x93NUMPY\x01\x00\x40", 9)), HasSubstr("truncated header"));
  EXPECT_THAT(open_error(std::string("\x93NUMPY\x02\x00\x40\x00\x00", 11)), HasSubstr("truncated header"));
  EXPECT_THAT(open_error(npy_image(dict_of("<f4", "(1,)"), f32s({1}), 4)),
              HasSubstr("unsupported .npy format version 4.0 (caulk reads 1.0, 2.0 and 3.0)"));
  std::string minor = npy_image(dict_of("<f4", "(1,)"), f32s({1}));
  minor[7] = 1;
  EXPECT_THAT(open_error(minor), HasSubstr("unsupported .npy format version 1.1"));
  std::string long_header = std::string("\x93NUMPY\x01\x00", 8) + le_uint(200, 2) + "{'descr': '<f4'";
  EXPECT_THAT(open_error(long_header), HasSubstr("header length 200 runs past the end of the file (15 bytes follow"));
}

TEST_F(Npy, MalformedHeaderDict) {
  auto with = [&](const std::string& dict) { return open_error(npy_image(dict, f32s({1, 2}))); };
  EXPECT_THAT(with("[1, 2]"), HasSubstr("header is not a dict: '[1, 2]'"));
  EXPECT_THAT(with(""), HasSubstr("malformed header: expected a value"));
  EXPECT_THAT(with("{'descr': '<f4', 'fortran_order': False}"), HasSubstr("header has no 'shape' key"));
  EXPECT_THAT(with("{'descr': '<f4', 'shape': (2,)}"), HasSubstr("header has no 'fortran_order' key"));
  EXPECT_THAT(with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}"), HasSubstr("unexpected key 'extra'"));
  EXPECT_THAT(with("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"), HasSubstr("the key 'descr' twice"));
  EXPECT_THAT(with(dict_of("<f4", "(2, x)")), HasSubstr("malformed header: unknown name 'x' at column 55"));
  EXPECT_THAT(with(dict_of("<f4", "(2, x)")), HasSubstr("in the value of 'shape'"));
  EXPECT_THAT(with(dict_of("<f4", "[2]")), HasSubstr("'shape' is not a tuple of non-negative integers: [2]"));
  EXPECT_THAT(with(dict_of("<f4", "(2)")), HasSubstr("'shape' is not a tuple"));
  EXPECT_THAT(with(dict_of("<f4", "(2, -1)")), HasSubstr("'shape' is not a tuple of non-negative integers: (2, -1)"));
  EXPECT_THAT(with(dict_of("<f4", "(2.0,)")), HasSubstr("expected an integer"));
  EXPECT_THAT(with(dict_of("<f4", "(99999999999999999999999,)")), HasSubstr("integer too large"));
  EXPECT_THAT(with(dict_of("<f4", "(2,")), HasSubstr("malformed header"));
  EXPECT_THAT(with("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}"), HasSubstr("malformed header"));
  EXPECT_THAT(with("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"), HasSubstr("'fortran_order' is not True or False: 0"));
  EXPECT_THAT(with("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"), HasSubstr("structured arrays"));
  EXPECT_THAT(with("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}"), HasSubstr("unknown name 'Maybe'"));
  EXPECT_THAT(with("{'descr': " + std::string(200, '(')), HasSubstr("nested more than 16 levels deep"));
  EXPECT_THAT(with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk"), HasSubstr("unexpected text after the dict"));
  EXPECT_THAT(with("{'descr': '<f4\xC3\xA9', 'fortran_order': False, 'shape': (2,)}"),
              HasSubstr("header is not ASCII (byte \\xc3 at column 15)"));
}

TEST_F(Npy, UnsupportedTypes) {
  EXPECT_THAT(open_error(npy_image(dict_of(">f8", "(1,)"), f64s({1}))), HasSubstr("big-endian arrays (descr '>f8') are not supported"));
  EXPECT_THAT(open_error(npy_image(dict_of(">i4", "(1,)"), le_uint(1, 4))), HasSubstr("big-endian"));
  EXPECT_THAT(open_error(npy_image(dict_of("|O", "(1,)"), le_uint(0, 8))), HasSubstr("object arrays (descr '|O') are not supported"));
  EXPECT_THAT(open_error(npy_image(dict_of("<c16", "(1,)"), f64s({1, 0}))), HasSubstr("unsupported dtype '<c16'"));
  EXPECT_THAT(open_error(npy_image(dict_of("<U5", "(1,)"), std::string(20, 'a'))), HasSubstr("unsupported dtype '<U5'"));
  EXPECT_THAT(open_error(npy_image(dict_of("<f16", "(1,)"), std::string(16, 'a'))), HasSubstr("unsupported dtype '<f16'"));
  // 3.0 allows UTF-8, but a descr with it is still not a type.
  EXPECT_THAT(open_error(npy_image(dict_of("<f\xC3\xA9", "(1,)"), f32s({1}), 3)), HasSubstr("unsupported dtype"));
}

TEST_F(Npy, DataSizeMustMatchTheShape) {
  EXPECT_THAT(open_error(npy_image(dict_of("<f4", "(2, 3)"), f32s({1, 2, 3, 4, 5}))),
              HasSubstr("data is truncated: shape (2, 3) of '<f4' needs 24 bytes, the file has 20 after the header"));
  EXPECT_THAT(open_error(npy_image(dict_of("<f4", "(2, 3)"), f32s({1, 2, 3, 4, 5, 6, 7}))),
              HasSubstr("data is longer than the shape says: shape (2, 3) of '<f4' needs 24 bytes, the file has 28"));
  EXPECT_THAT(open_error(npy_image(dict_of("<f4", "(4294967296, 4294967296, 4294967296)"), "")), HasSubstr("too many elements to address"));
  EXPECT_THAT(open_error(npy_image(dict_of("<f8", "(4611686018427387904,)"), "")), HasSubstr("too many elements"));
}

TEST_F(Npy, HeaderLengthIsBounded) {
  // A shape tuple megabytes long would cost far more memory to parse than its bytes: refused.
  std::string dict = dict_of("<f4", "(1,)");
  dict.append(kMaxNpyHeader, ' ');
  EXPECT_THAT(open_error(npy_image(dict, f32s({1}), 2)),
              AllOf(HasSubstr("header length 10"), HasSubstr(" exceeds the limit of 1048576 bytes")));
  std::vector<std::size_t> shape(kMaxNpyHeader / 3, 1);
  const float one = 1;
  EXPECT_THAT(data_error_message([&] { write_npy(dir_ / "deep.npy", DType::F32, shape, &one); }),
              HasSubstr("too many dimensions for a .npy header"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "deep.npy"));
}

TEST(NpyHeaderBytes, EveryPrefixAndRandomDamageIsADataError) {
  // parse_npy_header is the fuzzing entry point: no disk, arbitrary bytes, only DataError.
  const std::string good = npy_image(dict_of("<f4", "(2, 3)"), f32s({1, 2, 3, 4, 5, 6}));
  auto parse = [](const std::string& bytes) {
    return parse_npy_header(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), "mem.npy");
  };
  EXPECT_EQ(parse(good).data_offset, 128u);
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_THAT(data_error_message([&] { parse(good.substr(0, n)); }), StartsWith("mem.npy: ")) << n;
  std::mt19937 random(1234);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = good;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) damaged[random() % damaged.size()] = static_cast<char>(random() & 0xFF);
    try {
      parse(damaged);
    } catch (const DataError& e) {
      ASSERT_THAT(std::string(e.what()), StartsWith("mem.npy: "));
    }
  }
}

TEST_F(Npy, WritesTheImageNumPyWrites) {
  auto path = dir_ / "out.npy";
  const float values[] = {1, 2, 3, 4, 5, 6};
  write_npy(path, DType::F32, {2, 3}, values);
  EXPECT_EQ(read_bytes(path), npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32s({1, 2, 3, 4, 5, 6})));
}

TEST_F(Npy, EveryTypeRoundTrips) {
  const std::vector<std::pair<DType, std::string>> types = {
      {DType::BOOL, "|b1"}, {DType::U8, "|u1"},  {DType::I8, "|i1"},  {DType::U16, "<u2"}, {DType::I16, "<i2"}, {DType::U32, "<u4"},
      {DType::I32, "<i4"},  {DType::U64, "<u8"}, {DType::I64, "<i8"}, {DType::F16, "<f2"}, {DType::F32, "<f4"}, {DType::F64, "<f8"},
  };
  for (const auto& [dtype, descr] : types) {
    std::string data;
    for (std::size_t i = 0; i < 6 * dtype_size(dtype); ++i) data.push_back(static_cast<char>(dtype == DType::BOOL ? i % 2 : 37 * i + 1));
    auto path = dir_ / ("rt-" + descr.substr(1) + ".npy");
    write_npy(path, dtype, {3, 2}, data.data());
    EXPECT_EQ(read_bytes(path), npy_image(dict_of(descr, "(3, 2)"), data)) << descr;
    auto array = NpyArray::open(path);
    EXPECT_EQ(array.dtype(), dtype);
    EXPECT_EQ(array.shape(), (std::vector<std::size_t>{3, 2}));
    EXPECT_EQ(std::memcmp(array.data(), data.data(), data.size()), 0) << descr;
  }
  const std::uint16_t bf16[] = {0x3F80};
  EXPECT_THAT(data_error_message([&] { write_npy(dir_ / "bf.npy", DType::BF16, {1}, bf16); }), HasSubstr("bfloat16 has no NumPy dtype"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bf.npy"));
}

TEST_F(Npy, WritesEigenAndVectors) {
  Matrix m(3, 2);  // column-major in memory, C order in the file
  m << 1, 2, 3, 4, 5, 6;
  write_npy(dir_ / "m.npy", m);
  EXPECT_EQ(read_bytes(dir_ / "m.npy"), npy_image(dict_of("<f8", "(3, 2)"), f64s({1, 2, 3, 4, 5, 6})));
  EXPECT_EQ(NpyArray::open(dir_ / "m.npy").matrix().to_double(), m);

  Matrix tall = Matrix::Random(1000, 3);  // more rows than one block of the writer
  write_npy(dir_ / "tall.npy", tall);
  EXPECT_EQ(NpyArray::open(dir_ / "tall.npy").matrix().to_double(), tall);

  RowMatrixF f(2, 2);
  f << 1.5f, 2.5f, 3.5f, 4.5f;
  write_npy(dir_ / "f.npy", f);
  EXPECT_EQ(read_bytes(dir_ / "f.npy"), npy_image(dict_of("<f4", "(2, 2)"), f32s({1.5f, 2.5f, 3.5f, 4.5f})));

  write_npy(dir_ / "i.npy", std::vector<std::int64_t>{7, -1});
  EXPECT_EQ(read_bytes(dir_ / "i.npy"), npy_image(dict_of("<i8", "(2,)"), le_uint(7, 8) + le_uint(~0ull, 8)));
  write_npy(dir_ / "d.npy", std::vector<double>{});
  EXPECT_EQ(read_bytes(dir_ / "d.npy"), npy_image(dict_of("<f8", "(0,)"), ""));
}

TEST_F(Npy, LongHeadersUseFormat2) {
  std::vector<std::size_t> shape(30000, 1);  // "1, " x 30000 does not fit a 16-bit length
  const float one = 1;
  write_npy(dir_ / "wide.npy", DType::F32, shape, &one);
  std::string bytes = read_bytes(dir_ / "wide.npy");
  EXPECT_EQ(bytes[6], 2);
  std::string shape_text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) shape_text += i ? ", 1" : "1";
  EXPECT_EQ(bytes, npy_image(dict_of("<f4", shape_text + ")"), f32s({1}), 2));
  auto array = NpyArray::open(dir_ / "wide.npy");
  EXPECT_EQ(array.shape(), shape);
  EXPECT_EQ(NpyArray::read_header(dir_ / "wide.npy").data_offset % 64, 0u);
}
