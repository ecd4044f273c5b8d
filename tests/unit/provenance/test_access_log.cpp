// The access log follows a node's work onto the pool's workers (caulk/io/access_log.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "caulk/io/access_log.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/parallel.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using caulk::testing::TempDir;

TEST(AccessLog, RecordsReadsAndWritesOfEveryTaskTheNodeSubmitsWhicheverThreadRunsIt) {
  TempDir dir;
  constexpr std::size_t n = 12;
  for (std::size_t i = 0; i < n; ++i) dir.write("in" + std::to_string(i), std::string(i + 1, 'x'));
  ThreadPool pool(4);
  ScopedPool scoped(&pool);
  io::AccessLog log;
  std::set<std::thread::id> threads;
  std::mutex mutex;
  {
    io::ScopedAccessLog scope(&log);
    parallel_for(n, [&](std::size_t i) {
      (void)io::read_text_file(dir / ("in" + std::to_string(i)));
      io::write_file_atomic(dir / ("out" + std::to_string(i)), "y");
      std::this_thread::sleep_for(std::chrono::milliseconds(15));  // so the helpers take some
      std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    });
  }
  ASSERT_GT(threads.size(), 1u) << "the loop ran on one thread only: the test proves nothing";
  const auto reads = log.reads();
  const auto writes = log.writes();
  EXPECT_EQ(reads.size(), n);
  EXPECT_EQ(writes.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto read = reads.find((dir / ("in" + std::to_string(i))).string());
    ASSERT_NE(read, reads.end()) << i;
    EXPECT_EQ(read->second.size, i + 1);
    EXPECT_TRUE(writes.count((dir / ("out" + std::to_string(i))).string())) << i;
  }
  EXPECT_FALSE(log.incomplete());
  // Outside the scope nothing is recorded, on this thread or the pool's.
  parallel_for(n, [&](std::size_t i) { (void)io::read_text_file(dir / ("in" + std::to_string(i))); });
  EXPECT_EQ(log.reads().size(), n);
}

TEST(AccessLog, AFileThatChangesBetweenTwoOpensIsReported) {
  TempDir dir;
  const auto file = dir.write("f", "one");
  io::AccessLog log;
  io::ScopedAccessLog scope(&log);
  (void)io::read_text_file(file);
  (void)io::read_text_file(file);
  EXPECT_TRUE(log.changed_while_read().empty());
  dir.write("f", "three");
  (void)io::read_text_file(file);
  EXPECT_EQ(log.changed_while_read().count(file.string()), 1u);
}

TEST(AccessLog, AFileWrittenInsideAStagedFolderIsPartOfTheFolderNotAnOutputOfItsOwn) {
  TempDir dir;
  io::AccessLog log;
  io::ScopedAccessLog scope(&log);
  io::StagedOutput folder(dir / "model", io::StagedOutput::Kind::Folder);
  io::write_file_atomic(folder.path() / "index.json", "{}");
  folder.commit(io::OnExisting::Refuse);
  const auto writes = log.writes();
  ASSERT_EQ(writes.size(), 1u) << writes.begin()->first;
  EXPECT_EQ(writes.begin()->first, (dir / "model").string());
  EXPECT_TRUE(writes.begin()->second) << "a folder";
}
