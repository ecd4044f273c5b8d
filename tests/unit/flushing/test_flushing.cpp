// What waits for the disk (caulk/io/durable.hpp, Durability): outputs and records are flushed,
// state caulk rebuilds (cache entries, the hash cache, the ledger while the run goes) is not. This
// binary counts fsync(2) calls by defining fsync itself: the dynamic linker binds libcaulk's calls
// to the executable's definition, which forwards to libc's.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "caulk/file_hash.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/run_folder.hpp"
#include "temp_dir.hpp"

namespace {
std::atomic<int> fsyncs{0};
}

extern "C" int fsync(int fd) {
  fsyncs.fetch_add(1);
  using Fn = int (*)(int);
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fsync"));
  return real(fd);
}

namespace fs = std::filesystem;
using caulk::testing::read_file;
using caulk::testing::TempDir;
using namespace caulk::io;

namespace {

// The fsyncs `f` makes.
template <class F>
int fsyncs_of(F&& f) {
  const int before = fsyncs.load();
  f();
  return fsyncs.load() - before;
}

}  // namespace

TEST(Flushing, TheCountSeesLibcaulksFsyncs) {
  TempDir dir;
  // A flushed file: the file, then its folder, so the count is not vacuous.
  EXPECT_EQ(fsyncs_of([&] { write_file_atomic(dir / "a.txt", "a\n"); }), 2);
  EXPECT_EQ(read_file(dir / "a.txt"), "a\n");
}

TEST(Flushing, ARecomputableFileOrFolderIsCommittedWholeWithoutWaitingForTheDisk) {
  TempDir dir;
  EXPECT_EQ(fsyncs_of([&] { write_file_atomic(dir / "b.txt", "b\n", OnExisting::Replace, Durability::Recomputable); }), 0);
  EXPECT_EQ(read_file(dir / "b.txt"), "b\n");
  EXPECT_EQ(fsyncs_of([&] { write_file_atomic(dir / "b.txt", "c\n", OnExisting::Replace, Durability::Recomputable); }), 0);
  EXPECT_EQ(read_file(dir / "b.txt"), "c\n");

  auto folder = [&](Durability d, const std::string& text) {
    StagedOutput staged(dir / "entry", StagedOutput::Kind::Folder);
    write_file_atomic(staged.path() / "entry.json", text, OnExisting::Replace, d);
    staged.commit(OnExisting::Replace, d);
  };
  EXPECT_EQ(fsyncs_of([&] { folder(Durability::Recomputable, "{}\n"); }), 0);
  EXPECT_EQ(read_file(dir / "entry" / "entry.json"), "{}\n");
  EXPECT_TRUE(fs::exists(dir / "entry" / kOutputMarker));
  // Flushed: at least entry.json and its folder, the marker, the folder, and the folder's parent.
  EXPECT_GE(fsyncs_of([&] { folder(Durability::Flushed, "{\"a\": 1}\n"); }), 5);
  EXPECT_EQ(read_file(dir / "entry" / "entry.json"), "{\"a\": 1}\n");
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_FALSE(is_temporary_name(e.path().filename().string())) << e.path();
}

TEST(Flushing, TheLedgerIsFlushedAtTheRunsEndNotPerNode) {
  TempDir dir;
  const fs::path out = dir / "out";
  fs::create_directories(out / ".caulk");
  const fs::path a = dir.write("out/node/a.csv", "1\n"), b = dir.write("out/b.csv", "22\n");
  auto entry = [](const fs::path& p) { return caulk::RunFolderLedger::Entry{fs::file_size(p), caulk::hash_file(p), false}; };
  caulk::RunFolderLedger ledger(out);
  ledger.prepare("p\nfile");
  EXPECT_EQ(fsyncs_of([&] {
              ledger.add_all({{a, entry(a)}});
              ledger.add_all({{b, entry(b)}});
            }),
            0);
  EXPECT_EQ(ledger.saves(), 2u);
  EXPECT_NE(read_file(out / ".caulk" / "outputs.json").find("b.csv"), std::string::npos) << "saved, unflushed";
  caulk::FileHashCache hashes;
  EXPECT_EQ(fsyncs_of([&] { ledger.clean_up({}, hashes); }), 2) << "the run's end flushes it";
  EXPECT_EQ(fsyncs_of([&] { ledger.save(); }), 0) << "already on disk, flushed";
}
