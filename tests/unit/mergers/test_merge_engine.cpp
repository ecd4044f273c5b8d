// The engine's inputs and outputs: validation errors that name the tensor and models, sharded
// input and output, and outputs that never appear half-written or replace anything unasked.
#include <gtest/gtest.h>

#include <fstream>

#include "caulk/error.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "mergers/algorithms/merge_output.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;

std::vector<TensorParameter> ones(std::size_t k) { return std::vector<TensorParameter>(k, TensorParameter(1.0)); }

struct Engine : ::testing::Test {
  caulk::testing::TempDir dir;
  fs::path write(const std::string& name, const Values& v, DType t = DType::F32, const std::vector<Shape>& s = small_shapes()) {
    const fs::path p = dir / (name + ".safetensors");
    write_checkpoint(p, v, t, s);
    return p;
  }
  // The message of the Error that opening these models throws.
  std::string open_error(std::vector<MergeModel> models, std::optional<MergeModel> base = std::nullopt) {
    try {
      MergeInputs::open(std::move(models), std::move(base), false);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }
  std::vector<std::string> hidden_leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir.path()))
      if (e.path().filename().string().starts_with(".")) out.push_back(e.path().filename().string());
    return out;
  }
};

void expect_contains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& p : parts) EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' missing from: " << message;
}

TEST_F(Engine, DifferentTensorNamesNameTheFirstMismatchAndTheModels) {
  write("a", random_values(1, 1.0));
  std::vector<Shape> other = small_shapes();
  other[1].name = "layers.0.bias_renamed";
  Values v = random_values(2, 1.0);
  v["layers.0.bias_renamed"] = v["layers.0.bias"];
  write("b", v, DType::F32, other);
  expect_contains(open_error({{"alpha", dir / "a.safetensors", {}}, {"beta", dir / "b.safetensors", {}}}),
                  {"tensor 'layers.0.bias'", "model 'alpha'", "not in model 'beta'"});
}

TEST_F(Engine, DifferentShapesAndDtypesAreNamed) {
  write("a", random_values(1, 1.0));
  std::vector<Shape> other = small_shapes();
  other[2].dims = {7, 3};
  write("b", random_values(2, 1.0), DType::F32, other);
  expect_contains(open_error({{"alpha", dir / "a.safetensors", {}}, {"beta", dir / "b.safetensors", {}}}),
                  {"tensor 'layers.1.weight'", "[3, 7]", "[7, 3]", "model 'alpha'", "model 'beta'"});
  write("c", random_values(3, 1.0), DType::F16);
  expect_contains(open_error({{"alpha", dir / "a.safetensors", {}}, {"gamma", dir / "c.safetensors", {}}}),
                  {"is F32 in model 'alpha' but F16 in model 'gamma'"});
  // The base is checked too.
  expect_contains(open_error({{"alpha", dir / "a.safetensors", {}}}, MergeModel{"pre", dir / "c.safetensors", {}}),
                  {"the base 'pre'", "F16"});
  // Integer tensors cannot be merged.
  io::write_safetensors(dir / "int.safetensors", {{"ids", DType::I64, {2}, std::vector<std::byte>(16)}});
  expect_contains(open_error({{"ints", dir / "int.safetensors", {}}}), {"tensor 'ids'", "model 'ints'", "I64"});
}

TEST_F(Engine, CorruptShardAndMissingShardAreNamed) {
  // A sharded checkpoint: two shards and an index.
  fs::create_directories(dir / "sharded");
  const Values v = random_values(1, 1.0);
  std::vector<Shape> first(small_shapes().begin(), small_shapes().begin() + 2), second(small_shapes().begin() + 2, small_shapes().end());
  write_checkpoint(dir / "sharded" / "s1.safetensors", v, DType::F32, first);
  write_checkpoint(dir / "sharded" / "s2.safetensors", v, DType::F32, second);
  std::string index = R"({"weight_map": {)";
  for (const auto& s : first) index += "\"" + s.name + "\": \"s1.safetensors\",";
  for (std::size_t i = 0; i < second.size(); ++i) index += (i ? "," : "") + ("\"" + second[i].name + "\": \"s2.safetensors\"");
  index += "}}";
  dir.write("sharded/model.safetensors.index.json", index);
  const Values as_stored = write_checkpoint(dir / "single.safetensors", v, DType::F32);
  // Sharded and single inputs merge alike.
  LinearMerge method(ones(2), true);
  run_merge(MergeInputs::open({{"s", dir / "sharded", {}}, {"f", dir / "single.safetensors", {}}}, std::nullopt, false), method,
            dir / "o.safetensors", {});
  const Values got = read_checkpoint(dir / "o.safetensors");
  EXPECT_EQ(got, as_stored);  // the average of two copies of the same values

  // Corrupt: truncate the second shard.
  const std::string bytes = caulk::testing::read_file(dir / "sharded" / "s2.safetensors");
  std::ofstream(dir / "sharded" / "s2.safetensors", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  expect_contains(open_error({{"sharded_model", dir / "sharded", {}}}), {"model 'sharded_model'", "s2.safetensors"});
  // An index naming a file that is not there.
  fs::remove(dir / "sharded" / "s2.safetensors");
  expect_contains(open_error({{"sharded_model", dir / "sharded", {}}}), {"model 'sharded_model'", "shard 's2.safetensors' is missing"});
}

TEST_F(Engine, AnExistingOutputIsLeftAloneUnlessOverwriteIsSet) {
  write("a", random_values(1, 1.0));
  write("b", random_values(2, 1.0));
  const std::vector<MergeModel> models{{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}};
  LinearMerge method(ones(2), true);
  // Outputs of an earlier merge (caulk marks them).
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "existing.safetensors", {});
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "existing_folder", {});
  const std::string file_before = caulk::testing::read_file(dir / "existing.safetensors");
  try {
    run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "existing.safetensors", {});
    FAIL() << "overwrote without being asked";
  } catch (const Error& e) {
    expect_contains(e.what(), {"existing.safetensors", "already exists", "overwrite = true"});
  }
  EXPECT_EQ(caulk::testing::read_file(dir / "existing.safetensors"), file_before);
  // A folder target too.
  dir.write("existing_folder/keep.txt", "x");
  EXPECT_THROW(run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "existing_folder", {}), Error);
  EXPECT_EQ(caulk::testing::read_file(dir / "existing_folder" / "keep.txt"), "x");
  // With overwrite, both are replaced by a readable checkpoint.
  LinearMerge other({TensorParameter(1.0), TensorParameter(3.0)}, true);
  MergeOptions o;
  o.overwrite = true;
  run_merge(MergeInputs::open(models, std::nullopt, false), other, dir / "existing.safetensors", o);
  run_merge(MergeInputs::open(models, std::nullopt, false), other, dir / "existing_folder", o);
  EXPECT_NE(caulk::testing::read_file(dir / "existing.safetensors"), file_before);
  EXPECT_EQ(read_checkpoint(dir / "existing.safetensors"), read_checkpoint(dir / "existing_folder"));
  EXPECT_FALSE(fs::exists(dir / "existing_folder" / "keep.txt"));
  EXPECT_TRUE(hidden_leftovers().empty()) << hidden_leftovers().front();
}

// Issue 18, defect 12: overwrite = true deleted an unrelated folder recursively. Only outputs
// caulk marked are replaced; anything else is refused, named, and left as it was.
TEST_F(Engine, OverwriteReplacesOnlyWhatCaulkWrote) {
  write("a", random_values(1, 1.0));
  write("b", random_values(2, 1.0));
  const std::vector<MergeModel> models{{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}};
  LinearMerge method(ones(2), true);
  MergeOptions o;
  o.overwrite = true;
  dir.write("photos/2019/beach.jpg", "irreplaceable");
  dir.write("notes.safetensors", "not a checkpoint at all");
  write("downloaded", random_values(3, 1.0));  // a real checkpoint, but not one caulk wrote
  const std::string downloaded = caulk::testing::read_file(dir / "downloaded.safetensors");
  for (const char* target : {"photos", "notes.safetensors", "downloaded.safetensors"}) {
    try {
      run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / target, o);
      ADD_FAILURE() << target << " was replaced";
    } catch (const Error& e) {
      expect_contains(e.what(), {(dir / target).string(), "was not written by caulk", "left untouched", "remove or rename it yourself"});
    }
  }
  EXPECT_EQ(caulk::testing::read_file(dir / "photos" / "2019" / "beach.jpg"), "irreplaceable");
  EXPECT_EQ(caulk::testing::read_file(dir / "notes.safetensors"), "not a checkpoint at all");
  EXPECT_EQ(caulk::testing::read_file(dir / "downloaded.safetensors"), downloaded);
  // What caulk writes carries the mark, so a later overwrite may replace it.
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "merged.safetensors", {});
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "merged_folder", {});
  EXPECT_TRUE(io::is_caulk_output(dir / "merged.safetensors"));
  EXPECT_TRUE(io::is_caulk_output(dir / "merged_folder"));
  EXPECT_FALSE(io::is_caulk_output(dir / "downloaded.safetensors"));
  EXPECT_FALSE(io::is_caulk_output(dir / "photos"));
  EXPECT_EQ(io::Checkpoint::open(dir / "merged.safetensors").metadata().at("written_by"), "caulk");
  // An empty folder holds nothing to lose: it is replaced.
  fs::create_directory(dir / "empty");
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "empty", o);
  EXPECT_EQ(read_checkpoint(dir / "empty"), read_checkpoint(dir / "merged.safetensors"));
  EXPECT_TRUE(hidden_leftovers().empty()) << hidden_leftovers().front();
}

TEST_F(Engine, ShardedOutputHasAnIndexAndTheSameValues) {
  write("a", random_values(1, 1.0));
  write("b", random_values(2, 1.0));
  const std::vector<MergeModel> models{{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}};
  LinearMerge method(ones(2), true);
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "single.safetensors", {});
  MergeOptions o;
  o.max_shard_bytes = 100;  // layers.0.weight alone is 140 bytes: a shard of its own
  const MergeReport r = run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "sharded", o);
  EXPECT_TRUE(r.sharded);
  EXPECT_EQ(r.files, 3u);  // [layers.0.bias 28 B] [layers.0.weight 140 B] [layers.1.bias 12 + layers.1.weight 84 + norm.scale 4]
  EXPECT_TRUE(fs::exists(dir / "sharded" / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir / "sharded" / "model-00001-of-00003.safetensors"));
  EXPECT_EQ(read_checkpoint(dir / "sharded"), read_checkpoint(dir / "single.safetensors"));
  // Below the limit, a folder holds one model.safetensors and no index.
  o.max_shard_bytes = 1 << 20;
  run_merge(MergeInputs::open(models, std::nullopt, false), method, dir / "unsharded", o);
  EXPECT_TRUE(fs::exists(dir / "unsharded" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "unsharded" / "model.safetensors.index.json"));
  EXPECT_TRUE(hidden_leftovers().empty());
}

TEST(OutputPlan, ShardsFillGreedilyInOrder) {
  const std::vector<OutputTensor> t{{"a", DType::F32, {10}}, {"b", DType::F32, {10}}, {"c", DType::F32, {30}}, {"d", DType::F16, {4}}};
  const OutputLayout l = plan_output("/tmp/x", t, {}, 80);  // 40 + 40 | 120 | 8
  ASSERT_EQ(l.files.size(), 3u);
  EXPECT_EQ(l.file_of, (std::vector<std::size_t>{0, 0, 1, 2}));
  EXPECT_EQ(l.files[1], "model-00002-of-00003.safetensors");
  EXPECT_EQ(l.offset_of[1] - l.offset_of[0], 40u);
  EXPECT_EQ(l.file_sizes[0], l.offset_of[0] + 80);
  EXPECT_EQ(l.total_data_bytes, 208u);
  EXPECT_EQ(l.headers[0].size() % 8, 0u);
  const OutputLayout single = plan_output("/tmp/x.safetensors", t, {}, 80);  // a file is never sharded
  EXPECT_FALSE(single.folder);
  EXPECT_EQ(single.files.size(), 1u);
}

TEST_F(Engine, UnalignedAndMixedDtypeTensorsAreRead) {
  // "a" is 3 F16 values (6 bytes), so "b" (F32) starts at an offset that is not a multiple of 4:
  // the engine must copy it out rather than read floats in place.
  const std::vector<Shape> shapes{{"a", {3}}, {"b", {5}}};
  auto make = [&](const std::string& name, std::uint64_t seed) {
    const Values v = random_values(seed, 1.0, nullptr, shapes);
    std::vector<io::Tensor> t{{"a", DType::F16, {3}, encode_values(v.at("a"), DType::F16)},
                              {"b", DType::F32, {5}, encode_values(v.at("b"), DType::F32)}};
    io::write_safetensors(dir / name, t);
    return read_checkpoint(dir / name);
  };
  const Values x = make("x.safetensors", 1), y = make("y.safetensors", 2);
  for (Precision p : {Precision::F32, Precision::F64}) {
    LinearMerge method({TensorParameter(1.0), TensorParameter(3.0)}, true);
    MergeOptions o;
    o.precision = p;
    o.overwrite = true;
    run_merge(MergeInputs::open({{"x", dir / "x.safetensors", {}}, {"y", dir / "y.safetensors", {}}}, std::nullopt, false), method,
              dir / "o.safetensors", o);
    const Values got = read_checkpoint(dir / "o.safetensors");
    EXPECT_EQ(dtype_of(dir / "o.safetensors", "a"), DType::F16);
    EXPECT_EQ(dtype_of(dir / "o.safetensors", "b"), DType::F32);
    for (const std::string name : {"a", "b"})
      for (std::size_t j = 0; j < x.at(name).size(); ++j) {
        const double want = (x.at(name)[j] + 3 * y.at(name)[j]) / 4;
        EXPECT_NEAR(got.at(name)[j], want, half_ulp(want, dtype_of(dir / "o.safetensors", name)) * 1.0000001 + 1e-6) << name << j;
      }
  }
}

TEST_F(Engine, TaskVectorMethodsAskForABase) {
  write("a", random_values(1, 1.0));
  TaskArithmeticMerge method(ones(1), TensorParameter(1.0), false);
  try {
    run_merge(MergeInputs::open({{"a", dir / "a.safetensors", {}}}, std::nullopt, false), method, dir / "o.safetensors", {});
    FAIL();
  } catch (const Error& e) {
    expect_contains(e.what(), {"base = true", "`base`"});
  }
}

}  // namespace
}  // namespace caulk::merge
