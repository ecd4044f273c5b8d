// The merge engine against a plain copy of the same bytes, in the same run (issue 5,
// docs/performance.md).
//
// Four F32 checkpoints of `--gib` GiB each (64 tensors per GiB), generated here, merged by
// merge.linear's method (the uniform soup) into one checkpoint. Throughput = (bytes read + bytes
// written) / seconds. The floor is a plain program doing the same I/O: pread every input file
// in chunks of the engine's buffer size (4 MiB), then write a file of the output's size with the
// same buffer size and fsync it (the engine fsyncs its output too). Target: the merge reaches at
// least 60% of the floor's throughput, with peak resident memory at most 1 GiB whatever the model
// size (VmHWM printed at the end; run under /usr/bin/time -v for the same figure from outside).
//
//   bench_merge [--gib N] [--dir /tmp/caulk-bench-merge] [--repeat 2] [--threads N] [--keep]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "caulk/io/safetensors.hpp"
#include "caulk/parallel.hpp"
#include "mergers/algorithms/merge_methods.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t kTensorBytes = std::size_t{16} << 20;  // 16 MiB tensors, 64 per GiB
constexpr std::size_t kBufferBytes = std::size_t{4} << 20;   // the engine's chunk: 1 Mi float32 elements

// Writes one checkpoint of `tensors` F32 tensors streaming (one tensor buffer in memory).
void generate(const fs::path& path, std::size_t tensors, std::uint64_t seed) {
  std::vector<caulk::io::SafetensorsWriter::Entry> entries;
  for (std::size_t t = 0; t < tensors; ++t)
    entries.push_back({"layers." + std::to_string(t) + ".weight", caulk::io::DType::F32, {kTensorBytes / 4 / 1024, 1024}});
  caulk::io::SafetensorsWriter writer(path, entries);
  std::vector<float> buffer(kTensorBytes / 4);
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (std::size_t t = 0; t < tensors; ++t) {
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
    writer.write(entries[t].name, buffer.data(), kTensorBytes);
  }
  writer.commit();
}

// The floor: read every input with pread in buffer-sized pieces, write the output's size, fsync.
double plain_io(const std::vector<fs::path>& inputs, const fs::path& output, std::uint64_t output_bytes) {
  const auto started = clock_type::now();
  std::vector<char> buffer(kBufferBytes);
  for (const auto& in : inputs) {
    const int fd = ::open(in.c_str(), O_RDONLY);
    off_t offset = 0;
    ssize_t n;
    while ((n = ::pread(fd, buffer.data(), buffer.size(), offset)) > 0) offset += n;
    ::close(fd);
  }
  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (std::uint64_t written = 0; written < output_bytes;) {
    const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), output_bytes - written));
    if (::pwrite(fd, buffer.data(), size, static_cast<off_t>(written)) != static_cast<ssize_t>(size)) std::perror("pwrite");
    written += size;
  }
  ::fsync(fd);
  ::close(fd);
  return std::chrono::duration<double>(clock_type::now() - started).count();
}

// CPU seconds (user + system) of the whole process so far: the machine is shared, so wall time
// alone does not say whether a side was slow or just waited for a core.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::string vm_hwm() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return line.substr(6);
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  double gib = 1;
  int repeat = 2;
  bool keep = false;
  unsigned threads = 0;  // 0: every core
  fs::path dir = fs::temp_directory_path() / "caulk-bench-merge";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--gib" && i + 1 < argc)
      gib = std::stod(argv[++i]);
    else if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      threads = static_cast<unsigned>(std::stoi(argv[++i]));
    else if (a == "--keep")
      keep = true;
    else {
      std::fprintf(stderr, "usage: bench_merge [--gib N] [--dir PATH] [--repeat N] [--threads N] [--keep]\n");
      return 2;
    }
  }
  const auto tensors = static_cast<std::size_t>(gib * 64);
  fs::create_directories(dir);
  std::vector<fs::path> inputs;
  for (int m = 0; m < 4; ++m) {
    inputs.push_back(dir / ("model" + std::to_string(m) + ".safetensors"));
    if (!fs::exists(inputs.back())) generate(inputs.back(), tensors, static_cast<std::uint64_t>(m) + 1);
  }
  const unsigned width = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  caulk::ThreadPool pool(width);
  caulk::ScopedPool scoped(&pool);
  std::vector<caulk::merge::MergeModel> models;
  for (int m = 0; m < 4; ++m) models.push_back({"model" + std::to_string(m), inputs[static_cast<std::size_t>(m)], {}});

  std::uint64_t moved = 0, output_bytes = 0;
  double best_merge = 1e300, best_floor = 1e300;
  for (int r = 0; r < repeat; ++r) {
    const double cpu0 = cpu_seconds();
    const double floor_seconds = plain_io(inputs, dir / "floor.bin", static_cast<std::uint64_t>(tensors) * kTensorBytes);
    const double floor_cpu = cpu_seconds() - cpu0;
    fs::remove(dir / "floor.bin");
    caulk::merge::LinearMerge soup(std::vector<caulk::merge::TensorParameter>(4, caulk::merge::TensorParameter(1.0)), true);
    caulk::merge::MergeOptions o;
    o.chunk_elements = kBufferBytes / 4;
    o.overwrite = true;
    const double cpu1 = cpu_seconds();
    const auto started = clock_type::now();
    const auto report =
        caulk::merge::run_merge(caulk::merge::MergeInputs::open(models, std::nullopt, false), soup, dir / "merged.safetensors", o);
    const double merge_seconds = std::chrono::duration<double>(clock_type::now() - started).count();
    const double merge_cpu = cpu_seconds() - cpu1;
    moved = report.bytes_read + report.bytes_written;
    output_bytes = report.bytes_written;
    best_merge = std::min(best_merge, merge_seconds);
    best_floor = std::min(best_floor, floor_seconds);
    std::printf("round %d: merge %.2f s (%.0f MiB/s, %.2f CPU s), floor %.2f s (%.0f MiB/s, %.2f CPU s)\n", r + 1, merge_seconds,
                moved / merge_seconds / 1048576.0, merge_cpu, floor_seconds, moved / floor_seconds / 1048576.0, floor_cpu);
  }
  const double merge_rate = moved / best_merge / 1048576.0, floor_rate = moved / best_floor / 1048576.0;
  std::printf("linear merge of 4 x %.2f GiB F32 (%zu tensors each) into %.2f GiB, %u threads, best of %d:\n", gib, tensors,
              output_bytes / 1073741824.0, width, repeat);
  std::printf("  merge  %8.0f MiB/s read+written\n  floor  %8.0f MiB/s (pread + pwrite + fsync, same buffer size)\n", merge_rate,
              floor_rate);
  std::printf("  ratio  %.2f of the floor (target >= 0.60): %s\n", merge_rate / floor_rate,
              merge_rate >= 0.6 * floor_rate ? "met" : "NOT met");
  std::printf("  peak resident memory (VmHWM): %s (target <= 1 GiB)\n", vm_hwm().c_str());
  if (!keep) fs::remove_all(dir);
  return 0;
}
