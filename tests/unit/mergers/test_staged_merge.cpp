// A merge written one output file at a time (what each rank does with a shard under mpirun):
// every file written by its own job, with a method object built afresh that adopts rank 0's
// prepared values, must give the bytes run_merge writes in one go, and nothing shows under the
// output's name before the commit.
#include <gtest/gtest.h>

#include <functional>

#include "caulk/error.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "mergers/algorithms/merge_output.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;

std::vector<TensorParameter> weights(std::initializer_list<double> w) {
  std::vector<TensorParameter> out;
  for (double x : w) out.emplace_back(x);
  return out;
}

// Every file of a folder (or the one file), by name, with its raw bytes.
std::map<std::string, std::string> raw_files(const fs::path& p) {
  std::map<std::string, std::string> out;
  if (fs::is_regular_file(p)) {
    out[p.filename().string()] = caulk::testing::read_file(p);
    return out;
  }
  for (const auto& e : fs::directory_iterator(p)) out[e.path().filename().string()] = caulk::testing::read_file(e.path());
  return out;
}

struct StagedMerges : ::testing::Test {
  caulk::testing::TempDir dir;
  std::vector<MergeModel> models;
  std::optional<MergeModel> base;

  void SetUp() override {
    const Values b = random_values(10, 1.0);
    write_checkpoint(dir / "base.safetensors", b, DType::F32);
    base = MergeModel{"base", dir / "base.safetensors", {}};
    for (int i = 0; i < 3; ++i) {
      const std::string name = numbered("m", i);
      write_checkpoint(dir / (name + ".safetensors"), random_values(20 + i, 0.3, &b), DType::F32);
      Values f = random_values(40 + i, 1.0 + i);  // Fisher files of different norms
      for (auto& [t, v] : f)
        for (double& x : v) x = x * x + 0.01;
      write_checkpoint(dir / (name + ".fisher.safetensors"), f, DType::F32);
      models.push_back({name, dir / (name + ".safetensors"), dir / (name + ".fisher.safetensors")});
    }
  }

  // The merge staged, each file written (last first) by a method from `make` that adopts
  // `prepared` (rank 0's values unless given), then committed.
  void staged(const std::function<std::unique_ptr<MergeMethod>()>& make, const fs::path& out, const MergeOptions& o,
              const std::vector<double>* prepared = nullptr) {
    auto rank0 = make();
    const MergeInputs in = MergeInputs::open(models, rank0->uses_base() ? base : std::nullopt, rank0->uses_fisher());
    StagedMerge s(in, *rank0, out, o);
    EXPECT_FALSE(fs::exists(out)) << "nothing under the output's name before the commit";
    const std::vector<double> values = prepared ? *prepared : rank0->prepared_values();
    std::vector<std::uint64_t> bytes(s.file_count());
    for (std::size_t f = s.file_count(); f-- > 0;) {
      auto worker = make();
      const MergeInputs wi = MergeInputs::open(models, worker->uses_base() ? base : std::nullopt, worker->uses_fisher());
      worker->check(wi);
      worker->adopt_prepared(wi, values, o.chunk_elements);
      bytes[f] = merge_output_file(wi, *worker, s.file_job(f), o.precision, o.chunk_elements);
    }
    s.commit(bytes);
  }
  MergeReport whole(const std::function<std::unique_ptr<MergeMethod>()>& make, const fs::path& out, const MergeOptions& o) {
    auto m = make();
    return run_merge(MergeInputs::open(models, m->uses_base() ? base : std::nullopt, m->uses_fisher()), *m, out, o);
  }
};

TEST_F(StagedMerges, EveryMethodWritesTheSameBytesFileByFileAsInOneGo) {
  const std::vector<std::pair<std::string, std::function<std::unique_ptr<MergeMethod>()>>> methods{
      {"linear",
       [] {
         return std::make_unique<LinearMerge>(weights({1, 2, 3}), true);
       }},
      {"ties",
       [] {
         return std::make_unique<TiesMerge>(weights({1, 1, 2}), TensorParameter(0.4), TensorParameter(0.9));
       }},
      {"dare",
       [] {
         return std::make_unique<DareMerge>(weights({1, 1, 1}), TensorParameter(0.5), TensorParameter(1.0), DareMerge::Combine::Ties, false,
                                            7);
       }},
      {"fisher",
       [] {
         return std::make_unique<FisherMerge>(weights({1, 2, 1}), 1e-6, FisherMerge::FloorMode::Max, true);
       }},
      {"slerp", [] { return std::make_unique<SlerpMerge>(TensorParameter(0.3)); }},
  };
  for (const auto& [name, make] : methods) {
    if (name == "slerp") models.resize(2);  // the last: SLERP takes two models
    for (Precision p : {Precision::F32, Precision::F64}) {
      MergeOptions o;
      o.precision = p;
      o.max_shard_bytes = 100;  // several shards (see ShardedOutputHasAnIndexAndTheSameValues)
      o.output_dtype = p == Precision::F64 ? DType::BF16 : DType::F32;
      o.chunk_elements = 8;  // several chunks per tensor: the statistics passes see them in order
      const std::string tag = name + (p == Precision::F64 ? "-f64" : "-f32");
      const MergeReport r = whole(make, dir / (tag + "-whole"), o);
      ASSERT_GE(r.files, 2u) << tag;  // 3 in F32, 2 in BF16
      staged(make, dir / (tag + "-staged"), o);
      EXPECT_EQ(raw_files(dir / (tag + "-whole")), raw_files(dir / (tag + "-staged"))) << tag;
      // One file: a single unit.
      whole(make, dir / (tag + "-whole.safetensors"), o);
      staged(make, dir / (tag + "-staged.safetensors"), o);
      EXPECT_EQ(caulk::testing::read_file(dir / (tag + "-whole.safetensors")),
                caulk::testing::read_file(dir / (tag + "-staged.safetensors")))
          << tag;
    }
  }
}

TEST_F(StagedMerges, WorkersUseTheFisherNormsRankZeroComputed) {
  // The norms differ by model, so a worker that ignored them (all 1) would write other values:
  // this is what makes the equality above mean something for Fisher merging.
  auto make = [] { return std::make_unique<FisherMerge>(weights({1, 1, 1}), 1e-6, FisherMerge::FloorMode::Max, true); };
  MergeOptions o;
  o.max_shard_bytes = 100;
  whole(make, dir / "whole", o);
  const std::vector<double> wrong{1.0, 1.0, 1.0};
  staged(make, dir / "wrong", o, &wrong);
  EXPECT_NE(raw_files(dir / "whole"), raw_files(dir / "wrong"));
}

TEST_F(StagedMerges, AnUncommittedMergeLeavesNothingBehind) {
  {
    LinearMerge m(weights({1, 1, 1}), true);
    const MergeInputs in = MergeInputs::open(models, std::nullopt, false);
    MergeOptions o;
    o.max_shard_bytes = 100;
    StagedMerge s(in, m, dir / "never", o);
    merge_output_file(in, m, s.file_job(0), o.precision, o.chunk_elements);
  }  // a unit failed: no commit
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
  EXPECT_FALSE(fs::exists(dir / "never"));
}

TEST_F(StagedMerges, AFileJobWhoseTemporaryIsNotVisibleSaysSo) {
  LinearMerge m(weights({1, 1, 1}), true);
  const MergeInputs in = MergeInputs::open(models, std::nullopt, false);
  OutputFileJob job{dir / "missing" / "model.safetensors", {"norm.scale"}, {64}, {DType::F32}};
  try {
    merge_output_file(in, m, job, Precision::F32, 1024);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/model.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("share this file system"), std::string::npos) << e.what();
  }
  job.tensors = {"no.such.tensor"};
  EXPECT_THROW(merge_output_file(in, m, job, Precision::F32, 1024), Error);
}

}  // namespace
}  // namespace caulk::merge
