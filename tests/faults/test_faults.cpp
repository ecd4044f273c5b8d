// Fault injection (issue 18): caulk runs killed with SIGKILL at random, seeded moments of a merge
// (one file and a sharded folder, with and without overwrite) and of a ranker run; stopped with
// SIGTERM and SIGINT (once, and twice); run concurrently into one target; run out of disk space
// on a small tmpfs. After every fault the target holds the complete old output or the complete
// new one (compared byte for byte with reference runs), run.json is never an earlier run's
// result, exit codes are right, and no temporary survives the next run.
//
// `make test` runs a few rounds of each (CAULK_FAULT_ROUNDS, default 2, on 8 MB models);
// `make faults` runs many (FAULT_ROUNDS, FAULT_MB) and prints the counts docs/reliability.md
// records. CAULK_FAULT_CAULK=/path/to/an/older/caulk shows the defects these tests catch.
#include <gmock/gmock.h>

#include "fault_support.hpp"

namespace caulk::faults {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

class Faults : public ::testing::Test {
 protected:
  // The merge inputs, made on first use (the ranker and UTF-8 tests need none).
  MergeInputs& inputs() {
    if (!inputs_) inputs_.emplace(root_ / "inputs", model_mb());
    return *inputs_;
  }

  struct References {
    Snapshot old_output, new_output;
    double seconds = 0;  // one uninterrupted run that writes the new output
  };
  // The old and new outputs, as uninterrupted runs write them.
  References references(bool folder) {
    References r;
    const fs::path old_target = root_ / "ref" / (folder ? "old" : "old.safetensors");
    const fs::path new_target = root_ / "ref" / (folder ? "new" : "new.safetensors");
    Ended e = run_to_end(inputs().args(inputs().old_pipeline, old_target, true, root_ / "ref" / "out-old"), root_ / "ref-old");
    EXPECT_EQ(e.exit_code, 0) << read_file(root_ / "ref-old.err");
    const auto t0 = Clock::now();
    e = run_to_end(inputs().args(inputs().new_pipeline, new_target, true, root_ / "ref" / "out-new"), root_ / "ref-new");
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(e.exit_code, 0) << read_file(root_ / "ref-new.err");
    r.old_output = snapshot(old_target).value_or(Snapshot{});
    r.new_output = snapshot(new_target).value_or(Snapshot{});
    EXPECT_NE(r.old_output, r.new_output);
    return r;
  }

  // Puts the old output under `target` (a copy of the reference caulk wrote, so it is marked).
  void put_old(const fs::path& target, bool folder) {
    fs::remove_all(target);
    fs::create_directories(target.parent_path());
    const fs::path from = root_ / "ref" / (folder ? "old" : "old.safetensors");
    fs::copy(from, target, fs::copy_options::recursive);
  }

  // Classifies what a fault left under `target`; a lost or half-written output fails the test.
  void judge_target(const fs::path& target, const References& refs, bool old_expected, Tally& tally, const std::string& when) {
    const auto now = snapshot(target);
    if (!now) {
      if (old_expected) {
        ++tally.lost;
        ADD_FAILURE() << when << ": nothing under " << target << " (the old output was lost)";
      } else {
        ++tally.absent;
      }
    } else if (*now == refs.new_output) {
      ++tally.complete_new;
    } else if (old_expected && *now == refs.old_output) {
      ++tally.kept_old;
    } else {
      ++tally.lost;
      ADD_FAILURE() << when << ": " << target << " is neither the complete old output nor the complete new one (" << now->size()
                    << " files)";
    }
  }

  std::optional<MergeInputs> inputs_;
  caulk::testing::TempDir dir_;
  const fs::path root_ = dir_.path();
};

// ------------------------------------------------------------------ SIGKILL during a merge

struct KillCase {
  bool folder, overwrite;
};

class KilledMerges : public Faults, public ::testing::WithParamInterface<KillCase> {};

// Defects 1 and 9: a replace moved the old output aside before renaming the new one in, so a kill
// in between left nothing under the name, and temporaries stayed forever.
TEST_P(KilledMerges, TheTargetIsAlwaysCompleteAndTheNextRunLeavesNoTemporary) {
  const auto [folder, overwrite] = GetParam();
  const References refs = references(folder);
  const fs::path targets = root_ / "targets", target = targets / (folder ? "merged" : "merged.safetensors"), out = root_ / "out";
  Moments moments(seed() * 4 + (folder ? 2 : 0) + (overwrite ? 1 : 0), refs.seconds);
  Tally tally;
  for (int round = 0; round < rounds(); ++round) {
    if (overwrite)
      put_old(target, folder);
    else
      fs::remove_all(target);
    plant_record(out);
    const double at = moments.next();
    Child run(inputs().args(inputs().new_pipeline, target, overwrite, out), root_ / "killed");
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    run.signal(SIGKILL);
    const Ended e = run.wait();
    ++tally.faults;
    if (e.signal == SIGKILL) ++tally.landed;
    const std::string when = fmt::format("round {}, SIGKILL after {:.3f} s ({})", round, at, e.str());
    judge_target(target, refs, overwrite, tally, when);
    tally.leftovers_after_fault += static_cast<int>(leftovers(targets).size() + leftovers(out).size());
    if (const std::string problem = record_problem(out, run.err()); !problem.empty()) {
      ++tally.stale_records;
      ADD_FAILURE() << when << ": " << problem;
    }

    // The next run: it replaces (or, without overwrite, refuses an existing target) and removes
    // what the killed one left.
    const bool existed = fs::exists(target);
    double took = 0;
    const Ended next = run_timed(inputs().args(inputs().new_pipeline, target, overwrite, out), root_ / "next", took);
    if (next.exit_code == 0) moments.measured(took);
    const std::string next_err = read_file(root_ / "next.err");
    if (!overwrite && existed) {
      EXPECT_EQ(next.exit_code, 1) << when << ": " << next_err;
      EXPECT_THAT(next_err, HasSubstr("already exists")) << when;
    } else {
      EXPECT_EQ(next.exit_code, 0) << when << ": " << next_err;
    }
    EXPECT_EQ(snapshot(target), std::optional<Snapshot>(refs.new_output)) << when << ": after the next run";
    const auto left = leftovers(targets), left_out = leftovers(out);
    tally.leftovers_after_next_run += static_cast<int>(left.size() + left_out.size());
    EXPECT_TRUE(left.empty() && left_out.empty())
        << when << ": left after the next run: " << ::testing::PrintToString(left) << ::testing::PrintToString(left_out);
  }
  tally.print(fmt::format("SIGKILL, merge into a {}, overwrite = {}", folder ? "sharded folder" : "file", overwrite));
}

INSTANTIATE_TEST_SUITE_P(Outputs, KilledMerges,
                         ::testing::Values(KillCase{false, true}, KillCase{false, false}, KillCase{true, true}, KillCase{true, false}),
                         [](const auto& info) {
                           return std::string(info.param.folder ? "Folder" : "File") + (info.param.overwrite ? "Overwrite" : "New");
                         });

// ------------------------------------------------------------------ SIGKILL during a ranker run

TEST_F(Faults, KilledRankerRunsLeaveCompleteFilesAndNoStaleRecord) {
  const fs::path pipeline = caulk::testing::source_dir() / "pipelines" / "rank_hub.toml", out = root_ / "out", ref = root_ / "ref-rank";
  const auto t0 = Clock::now();
  ASSERT_EQ(run_to_end({"run", pipeline.string(), "--out", ref.string(), "--jobs", "2"}, root_ / "rank-ref").exit_code, 0)
      << read_file(root_ / "rank-ref.err");
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::vector<std::string> tables{"ranking.csv", "ranking.md", "correlations.csv"};
  Moments moments(seed() * 4 + 17, seconds);
  Tally tally;
  for (int round = 0; round < rounds(); ++round) {
    plant_record(out);
    const double at = moments.next();
    Child run({"run", pipeline.string(), "--out", out.string(), "--jobs", "2"}, root_ / "killed");
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    run.signal(SIGKILL);
    const Ended e = run.wait();
    ++tally.faults;
    if (e.signal == SIGKILL) ++tally.landed;
    const std::string when = fmt::format("round {}, SIGKILL after {:.3f} s ({})", round, at, e.str());
    for (const auto& t : tables)
      if (fs::exists(out / t)) {
        EXPECT_EQ(read_file(out / t), read_file(ref / t)) << when << ": " << t << " is not complete";
      }
    tally.leftovers_after_fault += static_cast<int>(leftovers(out).size());
    if (const std::string problem = record_problem(out, run.err()); !problem.empty()) {
      ++tally.stale_records;
      ADD_FAILURE() << when << ": " << problem;
    }
    double took = 0;
    const Ended next = run_timed({"run", pipeline.string(), "--out", out.string(), "--jobs", "2"}, root_ / "next", took);
    EXPECT_EQ(next.exit_code, 0) << read_file(root_ / "next.err");
    if (next.exit_code == 0) moments.measured(took);
    for (const auto& t : tables) EXPECT_EQ(read_file(out / t), read_file(ref / t)) << when << ": " << t << " after the next run";
    EXPECT_EQ(status_of(out / "run.json"), "ok");
    const auto left = leftovers(out);
    tally.leftovers_after_next_run += static_cast<int>(left.size());
    EXPECT_TRUE(left.empty()) << when << ": left after the next run: " << ::testing::PrintToString(left);
  }
  tally.print("SIGKILL, ranker run (pipelines/rank_hub.toml)");
}

// ------------------------------------------------------------------ SIGTERM and SIGINT

struct SignalCase {
  int signal;
  bool twice;
};

class SignalledMerges : public Faults, public ::testing::WithParamInterface<SignalCase> {};

// Defect 9: a stop signal ends the run cleanly: the node stops at its next step, its temporaries
// go, run.json says "interrupted", and the exit code is 128 + the signal. A second signal stops
// at once (temporaries removed best effort, the next run removes the rest).
TEST_P(SignalledMerges, TheRunStopsCleanlyWithTheSignalsExitCode) {
  const auto [sig, twice] = GetParam();
  const References refs = references(false);
  const fs::path targets = root_ / "targets", target = targets / "merged.safetensors", out = root_ / "out";
  Moments moments(seed() * 4 + static_cast<unsigned>(sig) + (twice ? 100 : 0), refs.seconds);
  Tally tally;
  for (int round = 0; round < rounds(); ++round) {
    put_old(target, false);
    plant_record(out);
    const double at = moments.next();
    Child run(inputs().args(inputs().new_pipeline, target, true, out), root_ / "signalled");
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    const auto sent = Clock::now();
    run.signal(sig);
    if (twice) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      run.signal(sig);
    }
    const Ended e = run.wait(std::chrono::seconds(60));
    const double took = std::chrono::duration<double>(Clock::now() - sent).count();
    ++tally.faults;
    const std::string when =
        fmt::format("round {}, signal {} {}after {:.3f} s ({} {:.2f} s later)", round, sig, twice ? "twice " : "", at, e.str(), took);
    ASSERT_FALSE(e.timed_out) << when;
    const std::string err = run.err();
    if (e.exit_code == 128 + sig) {
      ++tally.landed;
      if (!twice) {
        EXPECT_EQ(status_of(out / "run.json"), "interrupted") << when << ": " << err;
        EXPECT_EQ(snapshot(target), std::optional<Snapshot>(refs.old_output)) << when << ": the stopped merge must not replace the output";
      }
    } else if (e.exit_code == 0) {
      EXPECT_EQ(status_of(out / "run.json"), "ok") << when;  // the signal came after the run had ended
    } else if (e.signal == sig) {
      // Before caulk installed its handler (process start): nothing had started.
      EXPECT_EQ(record_problem(out, err), "") << when;
    } else {
      ADD_FAILURE() << when << ": unexpected end: " << err;
    }
    judge_target(target, refs, true, tally, when);
    const auto left_now = leftovers(targets), left_out_now = leftovers(out);
    tally.leftovers_after_fault += static_cast<int>(left_now.size() + left_out_now.size());
    if (!twice) {
      EXPECT_TRUE(left_now.empty() && left_out_now.empty())
          << when << ": a stopped run left " << ::testing::PrintToString(left_now) << ::testing::PrintToString(left_out_now);
    }
    double next_took = 0;
    const Ended next = run_timed(inputs().args(inputs().new_pipeline, target, true, out), root_ / "next", next_took);
    EXPECT_EQ(next.exit_code, 0) << read_file(root_ / "next.err");
    if (next.exit_code == 0) moments.measured(next_took);
    const auto left = leftovers(targets), left_out = leftovers(out);
    tally.leftovers_after_next_run += static_cast<int>(left.size() + left_out.size());
    EXPECT_TRUE(left.empty() && left_out.empty()) << when << ": left after the next run";
  }
  tally.print(fmt::format("{}{}, merge into a file", sig == SIGINT ? "SIGINT" : "SIGTERM", twice ? " twice" : ""));
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalledMerges,
                         ::testing::Values(SignalCase{SIGTERM, false}, SignalCase{SIGINT, false}, SignalCase{SIGINT, true}),
                         [](const auto& info) {
                           return std::string(info.param.signal == SIGINT ? "Sigint" : "Sigterm") + (info.param.twice ? "Twice" : "Once");
                         });

// ------------------------------------------------------------------ concurrent runs

class ConcurrentMerges : public Faults, public ::testing::WithParamInterface<KillCase> {};

// Defect 8: overwrite = false was checked, then enforced by a plain rename, so two merges into
// one target both succeeded and one silently replaced the other's output.
TEST_P(ConcurrentMerges, ExactlyOneWinsWithoutOverwriteAndTheTargetIsAlwaysComplete) {
  const auto [folder, overwrite] = GetParam();
  const References refs = references(folder);
  const fs::path targets = root_ / "targets", target = targets / (folder ? "merged" : "merged.safetensors");
  Tally tally;
  for (int round = 0; round < std::max(1, rounds() / 10); ++round) {
    fs::remove_all(target);
    Child a(inputs().args(inputs().old_pipeline, target, overwrite, root_ / "out-a"), root_ / "a");
    Child b(inputs().args(inputs().new_pipeline, target, overwrite, root_ / "out-b"), root_ / "b");
    const Ended ea = a.wait(), eb = b.wait();
    ++tally.faults;
    const std::string when = fmt::format("round {}: a {}, b {}", round, ea.str(), eb.str());
    const auto now = snapshot(target);
    ASSERT_TRUE(now.has_value()) << when;
    if (!overwrite) {
      ASSERT_EQ((ea.exit_code == 0) + (eb.exit_code == 0), 1) << when << "\na: " << a.err() << "\nb: " << b.err();
      const bool a_won = ea.exit_code == 0;
      EXPECT_EQ(a_won ? eb.exit_code : ea.exit_code, 1) << when;
      EXPECT_THAT(a_won ? b.err() : a.err(), AnyOf(HasSubstr("appeared while this output was being written"), HasSubstr("already exists")))
          << when;
      EXPECT_EQ(*now, a_won ? refs.old_output : refs.new_output) << when << ": the target is not the winner's output";
    } else {
      EXPECT_EQ(ea.exit_code, 0) << a.err();
      EXPECT_EQ(eb.exit_code, 0) << b.err();
      EXPECT_TRUE(*now == refs.old_output || *now == refs.new_output) << when;
    }
    const auto left = leftovers(targets), la = leftovers(root_ / "out-a"), lb = leftovers(root_ / "out-b");
    tally.leftovers_after_fault += static_cast<int>(left.size() + la.size() + lb.size());
    EXPECT_TRUE(left.empty() && la.empty() && lb.empty()) << when << ": left " << ::testing::PrintToString(left);
  }
  tally.print(fmt::format("two concurrent merges into a {}, overwrite = {}", folder ? "sharded folder" : "file", overwrite));
}

INSTANTIATE_TEST_SUITE_P(Outputs, ConcurrentMerges,
                         ::testing::Values(KillCase{false, false}, KillCase{true, false}, KillCase{false, true}, KillCase{true, true}),
                         [](const auto& info) {
                           return std::string(info.param.folder ? "Folder" : "File") + (info.param.overwrite ? "Overwrite" : "New");
                         });

// ------------------------------------------------------------------ a full disk

TEST_F(Faults, AMergeThatRunsOutOfSpaceFailsAndKeepsTheOldOutput) {
  const References refs = references(false);
  const std::uint64_t old_bytes = refs.old_output.at("").size();
  const fs::path disk = root_ / "disk", target = disk / "merged.safetensors";
  // Room for the old output and half the new one.
  SmallDisk small(disk, old_bytes + old_bytes / 2);
  if (!small.ok()) GTEST_SKIP() << "cannot mount a small tmpfs here (" << small.error() << "): the full-disk faults need root";
  put_old(target, false);
  Ended e = run_to_end(inputs().args(inputs().new_pipeline, target, true, root_ / "out"), root_ / "full");
  std::string err = read_file(root_ / "full.err");
  EXPECT_EQ(e.exit_code, 1) << err;
  EXPECT_THAT(err, HasSubstr("No space left on device"));
  EXPECT_EQ(snapshot(target), std::optional<Snapshot>(refs.old_output));
  EXPECT_TRUE(leftovers(disk).empty()) << ::testing::PrintToString(leftovers(disk));
  EXPECT_EQ(status_of(root_ / "out" / "run.json"), "failed");
  // A new target that does not fit: nothing under its name, nothing left beside it.
  fs::remove(target);
  SmallDisk tiny(disk / "tiny", old_bytes / 2);
  ASSERT_TRUE(tiny.ok());
  e = run_to_end(inputs().args(inputs().new_pipeline, disk / "tiny" / "m", false, root_ / "out"), root_ / "tiny");
  EXPECT_EQ(e.exit_code, 1) << read_file(root_ / "tiny.err");
  EXPECT_FALSE(fs::exists(disk / "tiny" / "m"));
  EXPECT_TRUE(leftovers(disk / "tiny").empty()) << ::testing::PrintToString(leftovers(disk / "tiny"));
}

// Defect 10: a node failed, then the full disk stopped the run.json write: the exit code was 2
// (a usage error) and the node's failure was not reported. It must be 1, with both errors.
TEST_F(Faults, AFullDiskAfterANodeFailedExitsOneAndReportsBoth) {
  // The run folder is a tmpfs about as large as what the run writes: pipeline.dot, the merged
  // model (which fills the disk) and run.json; then a node fails, then the final run.json needs
  // a page the disk no longer has. Which size leaves no page at that moment depends on how
  // run.json is written, so two sizes are tried and one of them must meet the case.
  const fs::path pipeline = inputs().dir / "fill-then-fail.toml";
  // The failing node consumes the merge, so it runs after it: task arithmetic without a base.
  std::ofstream(pipeline) << read_file(inputs().old_pipeline)
                          << "[[node]]\nid = \"bad\"\ntype = \"merge.task_arithmetic\"\ninputs = { checkpoints = \"m\" }\n";
  Ended e = run_to_end({"run", pipeline.string(), "--out", (root_ / "measure").string(), "--jobs", "1"}, root_ / "measure");
  ASSERT_EQ(e.exit_code, 1) << read_file(root_ / "measure.err");
  std::uint64_t pages = 0;
  for (const auto& f : fs::recursive_directory_iterator(root_ / "measure"))
    if (f.is_regular_file()) pages += (f.file_size() + 4095) / 4096;
  int met = 0;
  for (const std::uint64_t size : {pages, pages - 1}) {
    const fs::path out = root_ / fmt::format("disk-{}", size);
    SmallDisk disk(out, size * 4096);
    if (!disk.ok()) GTEST_SKIP() << "cannot mount a small tmpfs here (" << disk.error() << "): the full-disk faults need root";
    e = run_to_end({"run", pipeline.string(), "--out", out.string(), "--jobs", "1"}, root_ / "full");
    const std::string err = read_file(root_ / "full.err");
    const std::string when = fmt::format("a disk of {} pages ({} written on a roomy one): {}", size, pages, e.str());
    // Whatever the disk allowed, a node failed (the merge when it did not fit, else 'bad').
    EXPECT_EQ(e.exit_code, 1) << when << "\n" << err;
    EXPECT_THAT(err, HasSubstr("caulk: error: node '")) << when;
    const bool merged = err.find("[caulk] done  m ") != std::string::npos;
    if (merged && status_of(out / "run.json") != "failed") {  // the case: the final record did not fit
      ++met;
      EXPECT_THAT(err, HasSubstr("node 'bad' (merge.task_arithmetic) failed")) << when;
      EXPECT_THAT(err, HasSubstr("could not be written")) << when;
      EXPECT_THAT(err, HasSubstr("No space left on device")) << when;
      EXPECT_EQ(status_of(out / "run.json"), "running") << when;  // honest: not a result
    }
    EXPECT_TRUE(leftovers(out).empty()) << when << ": " << ::testing::PrintToString(leftovers(out));
  }
  EXPECT_GE(met, 1) << "no disk size made the final run.json write fail after the node failed";
}

// ------------------------------------------------------------------ what overwrite may replace

// Defect 12: overwrite = true deleted an unrelated folder recursively.
TEST_F(Faults, OverwriteNeverReplacesWhatCaulkDidNotWrite) {
  const fs::path target = root_ / "photos";
  dir_.write("photos/2019/beach.jpg", "irreplaceable");
  const Ended e = run_to_end(inputs().args(inputs().new_pipeline, target, true, root_ / "out"), root_ / "photos");
  const std::string err = read_file(root_ / "photos.err");
  EXPECT_EQ(e.exit_code, 1) << err;
  EXPECT_THAT(err, HasSubstr(target.string() + " exists and was not written by caulk"));
  EXPECT_THAT(err, HasSubstr("remove or rename it yourself, or choose another output"));
  EXPECT_EQ(read_file(target / "2019" / "beach.jpg"), "irreplaceable");
  EXPECT_TRUE(leftovers(root_).empty()) << ::testing::PrintToString(leftovers(root_));
}

// ------------------------------------------------------------------ invalid UTF-8

// Defect 3: invalid UTF-8 in a node's error (a raw CSV field, a Latin-1 folder name) made the JSON
// writer throw: exit 2, no run.json, the real error lost. CSV fields are now quoted escaped
// (docs/reliability.md, "Errors describe a bad file"), so the invalid bytes that still reach
// run.json come from the path: a folder named in Latin-1.
TEST_F(Faults, InvalidUtf8InACsvKeepsTheRecordTheErrorAndTheExitCode) {
  const std::string latin1 = "caf\xe9";
  dir_.write(latin1 + "/labels.csv",
             "label\n\xff\xfe"
             "bad\n1.5\n");
  // The pipeline (TOML, which must be UTF-8) names the file relative to itself, in the same folder.
  dir_.write(latin1 + "/p.toml",
             "[pipeline]\nname = \"utf8\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\n"
             "params = { labels = \"labels.csv\", kind = \"regression\" }\n");
  const Ended e = run_to_end({"run", (root_ / latin1 / "p.toml").string(), "--out", (root_ / "utf8" / "out").string()}, root_ / "utf8-run");
  const std::string err = read_file(root_ / "utf8-run.err");
  EXPECT_EQ(e.exit_code, 1) << err;
  EXPECT_THAT(err, HasSubstr("node 'task' (dataset.load) failed: "));
  EXPECT_THAT(err, HasSubstr(latin1 + "/labels.csv"));  // stderr keeps the original bytes
  const auto record = read_json(root_ / "utf8" / "out" / "run.json");
  ASSERT_FALSE(record.is_discarded()) << err;
  EXPECT_EQ(record.value("status", ""), "failed");
  const std::string error = record["nodes"]["task"].value("error", "");
  EXPECT_THAT(error, HasSubstr("caf\xef\xbf\xbd/labels.csv"));
  EXPECT_THAT(error, HasSubstr("bad' is not a number"));
}

}  // namespace
}  // namespace caulk::faults
