// Defect 6 of issue 18: truncating a memory-mapped features file while caulk read it killed caulk
// with SIGBUS and no message. A read past the new end of the file now completes on zero pages and
// every reader of the mapping throws a DataError naming the file (caulk/io/mapped_file.hpp).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "caulk/io/csv.hpp"
#include "caulk/io/mapped_file.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/io/safetensors.hpp"
#include "cli.hpp"
#include "io_test_support.hpp"
#include "npy_bytes.hpp"

extern char** environ;

namespace fs = std::filesystem;
using caulk::test::data_error_message;
using caulk::test::le_uint;
using caulk::test::write_bytes;
using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

const std::string kShrank = "the file shrank while caulk was reading it";

// rows x cols float32 features, 1 MB per 256 rows of 1024 columns.
std::string features(std::size_t rows, std::size_t cols) {
  std::vector<float> v(rows * cols);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f;
  return npy_f32(rows, cols, v);
}

void truncate_to(const fs::path& file, off_t size) { ASSERT_EQ(::truncate(file.c_str(), size), 0); }

TEST(TruncatedMapping, EveryMatrixReadSaysTheFileShrank) {
  TempDir dir;
  const fs::path file = dir.write("f.npy", features(1024, 1024));  // 4 MB
  const std::vector<std::function<void(const caulk::MatrixView&)>> reads = {
      [](const caulk::MatrixView& v) {
        caulk::RowMatrix out;
        v.rows_to(0, v.rows(), out);
      },
      [](const caulk::MatrixView& v) {
        caulk::Matrix out;
        v.rows_to(512, 512, out);
      },
      [](const caulk::MatrixView& v) { v.to_double(); },
      [](const caulk::MatrixView& v) {
        v.gather_rows({1000, 3});
      },
      [](const caulk::MatrixView& v) { v(1023, 1023); },
      [](const caulk::MatrixView& v) {
        std::size_t r, c;
        v.find_non_finite(r, c);
      },
  };
  for (std::size_t i = 0; i < reads.size(); ++i) {
    dir.write("f.npy", features(1024, 1024));
    const auto array = caulk::io::NpyArray::open(file);
    const caulk::MatrixView view = array.matrix();
    truncate_to(file, 4096);  // the header and a few rows stay
    EXPECT_EQ(data_error_message([&] { reads[i](view); }), file.string() + ": " + kShrank +
                                                               " (another program truncated or rewrote it?); what was read is not used. "
                                                               "Let it finish writing, then run again")
        << "read " << i;
    EXPECT_TRUE(array.mapping()->shrunk());
  }
}

TEST(TruncatedMapping, ConversionsAndOtherReadersSayTheFileShrank) {
  TempDir dir;
  // float16 and int64 arrays are converted (not viewed in place) by matrix() and to_int64().
  std::vector<std::uint16_t> halves(1 << 20, 0x3C00);  // 1.0
  const fs::path f16 = dir / "h.npy";
  write_bytes(f16, npy_image("<f2", "(1048576,)", halves.data(), halves.size() * 2));
  auto half = caulk::io::NpyArray::open(f16);
  truncate_to(f16, 4096);
  EXPECT_THAT(data_error_message([&] { half.matrix(); }), HasSubstr(kShrank));

  std::vector<std::int64_t> labels(1 << 19, 1);
  const fs::path i64 = dir.write("l.npy", npy_i64(labels));
  auto ints = caulk::io::NpyArray::open(i64);
  truncate_to(i64, 128);
  EXPECT_THAT(data_error_message([&] { ints.to_int64(); }), HasSubstr(kShrank));

  const std::string header = R"({"w":{"dtype":"F32","shape":[1048576],"data_offsets":[0,4194304]}})";
  const fs::path st = dir / "w.safetensors";
  write_bytes(st, le_uint(header.size(), 8) + header + std::string(4194304, '\0'));
  const auto tensors = caulk::io::SafetensorsFile::open(st);
  truncate_to(st, 4096);
  EXPECT_THAT(data_error_message([&] { tensors.to_float("w"); }), HasSubstr(kShrank));

  const fs::path raw = dir.write("raw.bin", std::string(1 << 20, 'x'));
  const auto map = caulk::io::MappedFile::open(raw);
  truncate_to(raw, 0);
  volatile char sink = 0;
  for (std::size_t i = 0; i < map->size(); i += 4096) sink = sink + static_cast<char>(map->data()[i]);
  EXPECT_TRUE(map->shrunk());
  EXPECT_THAT(data_error_message([&] { map->check_intact(); }), HasSubstr(kShrank));
}

TEST(TruncatedMapping, AnIntactMappingIsNotMarked) {
  TempDir dir;
  const fs::path file = dir.write("f.npy", features(256, 64));
  const auto array = caulk::io::NpyArray::open(file);
  caulk::RowMatrix out;
  array.matrix().rows_to(0, 256, out);
  EXPECT_FALSE(array.mapping()->shrunk());
  EXPECT_FLOAT_EQ(static_cast<float>(out(255, 63)), static_cast<float>(((255 * 64 + 63) * 7919) % 1000) / 1000.0f);
}

// A SIGBUS caulk did not cause through its own mappings still ends the process, as before: by the
// signal, or under AddressSanitizer (whose handler caulk's passes it to) by its report and abort.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

bool died_of_sigbus(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGBUS || (kAddressSanitizer && WTERMSIG(status) == SIGABRT);
  return kAddressSanitizer && WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

TEST(TruncatedMappingDeathTest, AFaultOutsideCaulksMappingsStillKills) {
  TempDir dir;
  const fs::path guarded = dir.write("guarded.bin", std::string(8192, 'g'));
  const fs::path file = dir.write("other.bin", std::string(8192, 'o'));
  const char* report = kAddressSanitizer ? "BUS" : "";
  EXPECT_EXIT(
      {
        const auto keep = caulk::io::MappedFile::open(guarded);  // installs the handler
        const int fd = ::open(file.c_str(), O_RDONLY);
        auto* p = static_cast<volatile const char*>(::mmap(nullptr, 8192, PROT_READ, MAP_PRIVATE, fd, 0));
        if (::ftruncate(::open(file.c_str(), O_WRONLY), 0) != 0) std::_Exit(3);
        std::_Exit(p[4096] == 'o' ? 4 : 5);  // SIGBUS before the exit
      },
      died_of_sigbus, report);
  EXPECT_EXIT(
      {
        const auto keep = caulk::io::MappedFile::open(guarded);
        ::kill(::getpid(), SIGBUS);
        std::_Exit(6);
      },
      died_of_sigbus, report);
}

// ------------------------------------------------------------- a real ranker, truncated mid-read

// Whether `pid` has `file` mapped (its line in /proc/PID/maps).
bool maps_file(pid_t pid, const fs::path& file) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.ends_with(file.string())) return true;
  return false;
}

struct Outcome {
  int status = 0;
  std::string err;
};

// Starts `caulk run`, truncates the features file once the ranker has held it mapped for 2 ms, and
// waits for the run to end.
Outcome run_and_truncate(const fs::path& pipeline, const fs::path& out, const fs::path& features_file) {
  const fs::path err = out.string() + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::string binary = caulk_binary().string(), pipeline_arg = pipeline.string(), out_arg = out.string();
  const char* argv[] = {binary.c_str(), "run", pipeline_arg.c_str(), "--out", out_arg.c_str(), "--jobs", "1", nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, const_cast<char* const*>(argv), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  int seen = 0, status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    seen = maps_file(pid, features_file) ? seen + 1 : 0;
    if (seen == 2) {
      truncate_to(features_file, 4096);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {status, read_file(err)};
}

TEST(TruncatedMapping, ARankerReadingATruncatedFileFailsCleanly) {
  TempDir dir;
  constexpr std::size_t kRows = 16384, kCols = 256;  // 16 MB of float32
  std::vector<std::int64_t> labels(kRows);
  for (std::size_t i = 0; i < kRows; ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  dir.write("labels.npy", npy_i64(labels));
  dir.write("hub.toml", "[hub]\nname = \"h\"\n[[model]]\nname = \"m\"\nfeatures = \"f.npy\"\n");
  dir.write("p.toml", R"([pipeline]
name = "truncated"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = "labels.npy", kind = "classification" }
[[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "hub.toml" }
[[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "hub", data = "task" }
)");
  const std::string image = features(kRows, kCols);
  int clean_failures = 0, other = 0;
  for (int attempt = 0; attempt < 10 && clean_failures < 2; ++attempt) {
    dir.write("f.npy", image);
    const Outcome o = run_and_truncate(dir / "p.toml", dir / ("out" + std::to_string(attempt)), dir / "f.npy");
    ASSERT_FALSE(WIFSIGNALED(o.status)) << "attempt " << attempt << " killed by signal " << WTERMSIG(o.status) << "\n" << o.err;
    ASSERT_TRUE(WIFEXITED(o.status));
    if (WEXITSTATUS(o.status) == 1 && o.err.find((dir / "f.npy").string() + ": " + kShrank) != std::string::npos)
      ++clean_failures;
    else
      ++other;  // truncated before the ranker mapped it ("data is truncated") or after it finished
  }
  EXPECT_GE(clean_failures, 2) << other << " runs ended otherwise";
}

}  // namespace
