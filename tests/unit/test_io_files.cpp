// MappedFile and AtomicFile: the two primitives every reader and writer is built on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/mapped_file.hpp"
#include "io_test_support.hpp"

using namespace caulk::io;
using caulk::test::data_error_message;
using caulk::test::read_bytes;
using caulk::test::ScratchDir;
using caulk::test::write_bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(MappedFile, MapsTheWholeFile) {
  ScratchDir dir;
  write_bytes(dir / "a.bin", std::string("hello\0world", 11));
  auto map = MappedFile::open(dir / "a.bin");
  ASSERT_EQ(map->size(), 11u);
  ASSERT_NE(map->data(), nullptr);
  EXPECT_EQ(std::memcmp(map->data(), "hello\0world", 11), 0);
  EXPECT_EQ(map->path(), dir / "a.bin");
}

TEST(MappedFile, EmptyFileHasNoData) {
  ScratchDir dir;
  write_bytes(dir / "empty.bin", "");
  auto map = MappedFile::open(dir / "empty.bin");
  EXPECT_EQ(map->size(), 0u);
  EXPECT_EQ(map->data(), nullptr);
}

TEST(MappedFile, MissingFileAndFolderAreDataErrors) {
  ScratchDir dir;
  auto missing = (dir / "missing.bin").string();
  EXPECT_EQ(data_error_message([&] { MappedFile::open(missing); }), missing + ": cannot open: no such file");
  EXPECT_EQ(data_error_message([&] { MappedFile::open(dir.path()); }), dir.path().string() + ": not a regular file (a folder)");
}

TEST(AtomicFile, CommitWritesTheTargetAndLeavesNoTemporary) {
  ScratchDir dir;
  const auto target = dir / "out.txt";
  {
    AtomicFile file(target);
    EXPECT_EQ(file.temporary().parent_path(), dir.path());
    EXPECT_THAT(file.temporary().filename().string(), StartsWith(".out.txt.caulk-tmp-"));
    file.write("hello ");
    file.write(std::string_view("world"));
    file.commit();
  }
  EXPECT_EQ(read_bytes(target), "hello world");
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(AtomicFile, DestroyedWithoutCommitLeavesNothing) {
  ScratchDir dir;
  {
    AtomicFile file(dir / "out.txt");
    file.write("partial");
    EXPECT_TRUE(std::filesystem::exists(file.temporary()));
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, ExistingTargetIsUntouchedUntilCommit) {
  ScratchDir dir;
  const auto target = dir / "out.txt";
  write_bytes(target, "old");
  AtomicFile file(target);
  file.write("new content");
  EXPECT_EQ(read_bytes(target), "old");
  file.commit();
  EXPECT_EQ(read_bytes(target), "new content");
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(AtomicFile, AbandonedRewriteKeepsTheOldFile) {
  ScratchDir dir;
  const auto target = dir / "out.txt";
  write_bytes(target, "old");
  { AtomicFile(target).write("new"); }
  EXPECT_EQ(read_bytes(target), "old");
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(AtomicFile, CreatesMissingFolders) {
  ScratchDir dir;
  write_file_atomic(dir / "a" / "b" / "c.txt", "deep");
  EXPECT_EQ(read_bytes(dir / "a" / "b" / "c.txt"), "deep");
}

TEST(AtomicFile, NewFilesAreReadableLikeOrdinaryFiles) {
  ScratchDir dir;
  write_file_atomic(dir / "out.txt", "x");
  auto perms = std::filesystem::status(dir / "out.txt").permissions();
  EXPECT_NE(perms & std::filesystem::perms::owner_read, std::filesystem::perms::none);
  EXPECT_NE(perms & std::filesystem::perms::owner_write, std::filesystem::perms::none);
}

TEST(AtomicFile, UnwritableFolderIsADataErrorNamingTheTarget) {
  ScratchDir dir;
  write_bytes(dir / "file", "not a folder");
  const auto target = dir / "file" / "out.txt";
  EXPECT_THAT(data_error_message([&] { AtomicFile file(target); }),
              AllOf(StartsWith(target.string() + ": "), HasSubstr("cannot create the folder")));
}

TEST(AtomicFile, WriteAfterCommitIsRefused) {
  ScratchDir dir;
  AtomicFile file(dir / "out.txt");
  file.commit();
  EXPECT_THAT(data_error_message([&] { file.write("late"); }), HasSubstr("write after commit"));
  EXPECT_EQ(read_bytes(dir / "out.txt"), "");
}
