// Checkpoints: a single .safetensors file, or a folder of shards with an index.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using caulk::test::ScratchDir;
using caulk::test::write_bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

std::string st_image(const std::string& header, const std::string& data) { return le_uint(header.size(), 8) + header + data; }

const std::string kShard1 = "model-00001-of-00002.safetensors";
const std::string kShard2 = "model-00002-of-00002.safetensors";

// Shard 1 holds "a" (F32 [2]) and "b" (I8 [1]); shard 2 holds "c" (F32 [1]).
class ShardedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    write_bytes(dir_ / kShard1, st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                         R"("b":{"dtype":"I8","shape":[1],"data_offsets":[8,9]}})",
                                         le_f32(1) + le_f32(2) + "\xFE"));
    write_bytes(dir_ / kShard2, st_image(R"({"c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", le_f32(3)));
  }
  void write_index(const std::string& weight_map) {
    write_bytes(index(), R"({"metadata": {"total_size": 13, "format": "pt"}, "weight_map": {)" + weight_map + "}}");
  }
  std::string standard_map() const { return "\"a\": \"" + kShard1 + "\", \"b\": \"" + kShard1 + "\", \"c\": \"" + kShard2 + "\""; }
  std::filesystem::path index() const { return dir_ / "model.safetensors.index.json"; }
  // The DataError for opening the folder; it must name the index file.
  std::string open_error() {
    std::string message = data_error_message([&] { Checkpoint::open(dir_.path()); });
    EXPECT_THAT(message, StartsWith(index().string() + ": "));
    return message;
  }
  ScratchDir dir_;
};

}  // namespace

TEST_F(ShardedCheckpoint, ReadsTwoShardsThroughTheIndex) {
  write_index(standard_map());
  for (const auto& path : {dir_.path(), index()}) {
    auto checkpoint = Checkpoint::open(path);
    EXPECT_TRUE(checkpoint.sharded());
    EXPECT_EQ(checkpoint.path(), path);
    EXPECT_THAT(checkpoint.names(), ElementsAre("a", "b", "c"));
    EXPECT_EQ(checkpoint.info("c").shape, (std::vector<std::size_t>{1}));
    EXPECT_EQ(checkpoint.to_float("a"), (std::vector<float>{1, 2}));
    EXPECT_EQ(checkpoint.to_double("b"), (std::vector<double>{-2}));
    EXPECT_EQ(checkpoint.to_float("c"), (std::vector<float>{3}));
    EXPECT_EQ(checkpoint.bytes("c").size(), 4u);
    EXPECT_EQ(checkpoint.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"total_size", "13"}}));
    EXPECT_THAT(data_error_message([&] { checkpoint.info("zzz"); }), HasSubstr("no tensor named 'zzz'"));
  }
}

TEST(Checkpoint, ReadsASingleFile) {
  ScratchDir dir;
  const std::string image =
      st_image(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}})", le_f32(5));
  write_bytes(dir / "one.safetensors", image);
  auto single = Checkpoint::open(dir / "one.safetensors");
  EXPECT_FALSE(single.sharded());
  EXPECT_THAT(single.names(), ElementsAre("w"));
  EXPECT_EQ(single.to_float("w"), (std::vector<float>{5}));
  EXPECT_EQ(single.metadata().at("format"), "pt");

  std::filesystem::create_directory(dir / "folder");
  write_bytes(dir / "folder" / "model.safetensors", image);
  auto in_folder = Checkpoint::open(dir / "folder");
  EXPECT_FALSE(in_folder.sharded());
  EXPECT_EQ(in_folder.info("w").shape, (std::vector<std::size_t>{1, 1}));
}

TEST(Checkpoint, MissingOrEmptyPlaces) {
  ScratchDir dir;
  const auto missing = dir / "missing.safetensors";
  EXPECT_EQ(data_error_message([&] { Checkpoint::open(missing); }), missing.string() + ": cannot open: no such file");
  EXPECT_EQ(data_error_message([&] { Checkpoint::open(dir.path()); }),
            dir.path().string() + ": the folder holds neither model.safetensors.index.json nor model.safetensors");
}

TEST_F(ShardedCheckpoint, BadIndexJson) {
  write_bytes(index(), R"({"weight_map": {"a": )");
  EXPECT_THAT(open_error(), HasSubstr("index is not valid JSON"));
  write_bytes(index(), "");
  EXPECT_THAT(open_error(), HasSubstr("empty file"));
  write_bytes(index(), "[]");
  EXPECT_THAT(open_error(), HasSubstr("index is not a JSON object"));
  write_bytes(index(), R"({"metadata": {}})");
  EXPECT_THAT(open_error(), HasSubstr("index has no 'weight_map'"));
  write_bytes(index(), R"({"weight_map": {"a": 1}})");
  EXPECT_THAT(open_error(), HasSubstr("tensor 'a': the shard is not a file name: 1"));
}

TEST_F(ShardedCheckpoint, IndexNamingAMissingShard) {
  write_index(standard_map() + R"(, "d": "model-00003-of-00003.safetensors")");
  EXPECT_THAT(open_error(), HasSubstr("shard 'model-00003-of-00003.safetensors' is missing"));
}

TEST_F(ShardedCheckpoint, ShardOutsideTheFolder) {
  write_index(standard_map() + R"(, "d": "../elsewhere.safetensors")");
  EXPECT_THAT(open_error(), HasSubstr("shard '../elsewhere.safetensors' is not a file in the checkpoint's folder"));
}

TEST_F(ShardedCheckpoint, TensorListedButAbsentFromItsShard) {
  write_index("\"a\": \"" + kShard1 + "\", \"b\": \"" + kShard1 + "\", \"c\": \"" + kShard1 + "\"");
  EXPECT_THAT(open_error(), HasSubstr("tensor 'c' is listed in shard '" + kShard1 + "', which does not hold it"));
}

TEST_F(ShardedCheckpoint, SameTensorInTwoShards) {
  write_bytes(dir_ / kShard2, st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                       R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                       le_f32(9) + le_f32(9) + le_f32(3)));
  write_index(standard_map());
  EXPECT_THAT(open_error(), HasSubstr("tensor 'a' is in two shards: '" + kShard1 + "' (as the index says) and '" + kShard2 + "'"));
}

TEST_F(ShardedCheckpoint, ShardHoldingAnUnlistedTensor) {
  write_index("\"a\": \"" + kShard1 + "\", \"c\": \"" + kShard2 + "\"");
  EXPECT_THAT(open_error(), HasSubstr("shard '" + kShard1 + "' holds tensor 'b', which the index does not list"));
}

TEST_F(ShardedCheckpoint, TensorListedTwiceInTheIndex) {
  write_index(standard_map() + ", \"a\": \"" + kShard2 + "\"");
  EXPECT_THAT(open_error(), HasSubstr("the index lists tensor 'a' twice"));
}

TEST_F(ShardedCheckpoint, BrokenShardNamesTheShard) {
  write_bytes(dir_ / kShard2, "short");
  write_index(standard_map());
  EXPECT_THAT(data_error_message([&] { Checkpoint::open(dir_.path()); }), StartsWith((dir_ / kShard2).string() + ": truncated"));
}
