// One run per folder: the lock, and what becomes of a previous run's files (caulk/run_folder.hpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "caulk/run_folder.hpp"
#include "cli.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path quickstart() { return source_dir() / "pipelines" / "quickstart.toml"; }

// The quickstart in `dir` (its demo data copied beside it), with `extra` appended.
fs::path quickstart_copy(const TempDir& dir, const std::string& name, const std::string& extra = "") {
  if (!fs::exists(dir / "demo")) fs::copy(quickstart().parent_path() / "demo", dir / "demo", fs::copy_options::recursive);
  return dir.write(name, read_file(quickstart()) + extra);
}

}  // namespace

TEST(RunFolderLock, ASecondRunOnTheSameFolderExits2NamingTheFolderAndTheHoldersPid) {
  TempDir dir;
  const fs::path out = dir / "out";
  {
    caulk::RunFolderLock held(out);  // this process plays the first run
    const auto r = run_caulk({"run", quickstart().string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(out.string()));
    EXPECT_THAT(r.err, HasSubstr("PID " + std::to_string(::getpid())));
    EXPECT_FALSE(fs::exists(out / "run.json")) << "nothing was written into the busy folder";
    // Also in-process, as the exception the executor throws.
    try {
      caulk::RunFolderLock second(out);
      ADD_FAILURE() << "a second lock was granted";
    } catch (const caulk::RunFolderBusy& e) {
      EXPECT_EQ(e.holder_pid(), ::getpid());
    }
  }
  // Released: the run goes ahead.
  const auto r = run_caulk({"run", quickstart().string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // `caulk report` writes into the folder too: not while a run holds it.
  caulk::RunFolderLock held(out);
  const auto report = run_caulk({"report", out.string()});
  EXPECT_EQ(report.exit_code, 2) << report.err;
  EXPECT_THAT(report.err, HasSubstr("PID " + std::to_string(::getpid())));
}

TEST(RunFolderLock, AHolderThatDiesReleasesIt) {
  TempDir dir;
  const fs::path out = dir / "out";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    caulk::RunFolderLock held(out);
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();  // killed while holding it
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_THROW(caulk::RunFolderLock again(out), caulk::RunFolderBusy);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_NO_THROW(caulk::RunFolderLock again(out));
  EXPECT_EQ(run_caulk({"run", quickstart().string(), "--out", out.string()}).exit_code, 0);
}

TEST(RunFolderCleaning, AnotherPipelineMovesThePreviousRunAsideOnceItSucceededAndLeavesWhatCaulkDidNotWrite) {
  TempDir dir;
  const fs::path out = dir / "out";
  ASSERT_EQ(run_caulk({"run", quickstart().string(), "--out", out.string()}).exit_code, 0);
  ASSERT_TRUE(fs::exists(out / "ranking.csv"));
  ASSERT_TRUE(fs::exists(out / "report.html"));
  dir.write("out/notes.txt", "mine");                 // the user's own file
  dir.write("out/ranking.md", "edited by the user");  // an output the user changed
  // Another pipeline (another name, another file) into the same folder, without the ranking.
  std::string text = read_file(quickstart_copy(dir, "other.toml"));
  text =
      std::regex_replace(text.substr(0, text.find("[[node]]\nid = \"ranking\"")), std::regex("name = \"quickstart\""), "name = \"other\"");
  const fs::path trimmed = dir.write("other.toml", text);
  const auto r = run_caulk({"run", trimmed.string(), "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("holds the run of another pipeline"));
  EXPECT_THAT(r.err, HasSubstr("moved the 2 outputs of the previous run (another pipeline) aside"));
  EXPECT_THAT(r.err, HasSubstr("changed since caulk wrote them: ranking.md"));
  // The previous run's outputs are aside; the user's file and the edited output stay.
  EXPECT_FALSE(fs::exists(out / "ranking.csv"));
  EXPECT_TRUE(fs::exists(out / ".caulk" / "previous-run" / "ranking.csv"));
  EXPECT_TRUE(fs::exists(out / ".caulk" / "previous-run" / "report.html"));
  EXPECT_TRUE(fs::exists(out / ".caulk" / "previous-run" / "run.json"));
  EXPECT_EQ(read_file(out / "notes.txt"), "mine");
  EXPECT_EQ(read_file(out / "ranking.md"), "edited by the user");
  EXPECT_EQ(Json::parse(read_file(out / "run.json"))["pipeline"], "other");
}

TEST(RunFolderCleaning, TheSamePipelineRemovesThePreviousOutputsItNoLongerWrites) {
  TempDir dir;
  const fs::path out = dir / "out";
  const fs::path pipeline = quickstart_copy(dir, "p.toml");
  ASSERT_EQ(run_caulk({"run", pipeline.string(), "--out", out.string()}).exit_code, 0);
  ASSERT_TRUE(fs::exists(out / "report.html"));
  ASSERT_TRUE(fs::exists(out / "ranking.md"));
  dir.write("out/notes.txt", "mine");
  dir.write("out/ranking.md", "edited by the user");
  // The same pipeline, edited: no HTML report and no ranking any more.
  std::string text = read_file(pipeline);
  text = text.substr(0, text.find("[[node]]\nid = \"ranking\""));
  dir.write("p.toml", text);
  const auto r = run_caulk({"run", pipeline.string(), "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("removed"));
  EXPECT_THAT(r.err, HasSubstr("report.html"));
  EXPECT_FALSE(fs::exists(out / "report.html"));
  EXPECT_FALSE(fs::exists(out / "ranking.csv"));
  EXPECT_EQ(read_file(out / "ranking.md"), "edited by the user") << "changed since caulk wrote it: left";
  EXPECT_THAT(r.err, HasSubstr("ranking.md"));
  EXPECT_EQ(read_file(out / "notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(out / ".caulk" / "previous-run"));
  // Run again unchanged: nothing to remove, nothing said.
  const auto again = run_caulk({"run", pipeline.string(), "--out", out.string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, Not(HasSubstr("removed")));
}
