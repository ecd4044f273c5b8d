// TorchScript models through caulk's runtime against PyTorch in Python on the same files, in the
// same run (issue 20, docs/performance.md "TorchScript models"):
//   feature extraction of a traced ResNet-18 at 224 x 224, batches of 64, with 1 and 2 threads
//   (caulk: one intra-op thread per batch, batches in parallel, as `--jobs` runs them; PyTorch:
//   torch.set_num_threads on one batch at a time);
//   the exact diagonal Fisher (10 classes) of a digits CNN over 64 samples, one thread, against
//   a careful per-sample, per-class autograd loop.
//   --process [N]: the whole process instead, `caulk run` (fork/exec of build/bin/caulk: dataset.load
//   of N images, adapter.models on a hub of that ResNet-18, batches of 64, --jobs = threads)
//   against a Python process running PyTorch eager on the nn.Module with the same weights
//   (torch.set_num_threads(threads)), each timed from outside, loading included.
// Usage: bench_torch [SCRATCH_DIR] [--fisher | --process [N]]   (models are written there once by
// bench/torch_models.py; --fisher runs the Fisher part only)
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "caulk/io/npy.hpp"
#include "caulk/models/model.hpp"

namespace fs = std::filesystem;
using caulk::models::InputBatch;

namespace {

constexpr int kBatches = 3;
const std::string kPython = "/usr/bin/python3";
const fs::path kScript = fs::path(CAULK_SOURCE_DIR) / "bench" / "torch_models.py";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU seconds of the whole process (every thread): on a machine shared with other work, a
// figure that other processes disturb much less than wall time.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Timing {
  double wall = 1e300, cpu = 1e300;  // best of the repeats
};

template <class F>
Timing best_of(int repeats, F&& f) {
  Timing best;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu = process_cpu_seconds();
    f();
    best.cpu = std::min(best.cpu, process_cpu_seconds() - cpu);
    best.wall = std::min(best.wall, seconds_since(start));
  }
  return best;
}

std::string run_command(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0) throw std::runtime_error("failed: " + command);
  return out;
}

struct Batch {
  caulk::io::NpyArray array;
  InputBatch view;
  explicit Batch(const fs::path& p) : array(caulk::io::NpyArray::open(p)) {
    view.dtype = array.dtype();
    for (auto s : array.shape()) view.shape.push_back(static_cast<std::int64_t>(s));
    view.data = array.data();
  }
};

std::unique_ptr<caulk::models::Model> open(const fs::path& file, const std::string& feature_method) {
  caulk::models::ModelSource s;
  s.name = file.stem().string();
  s.torchscript = file;
  s.feature_method = feature_method;
  return caulk::models::open_model(s);
}

// Feature extraction of ResNet-18 with 1 and 2 threads; returns PyTorch's one-thread timings.
nlohmann::json bench_resnet(const fs::path& dir) {
  auto start = std::chrono::steady_clock::now();
  auto resnet = open(dir / "resnet18_224.pt", "embed");
  const double first_open = seconds_since(start);
  const Batch images(dir / "images_224.npy");
  resnet->run(images.view.slice(0, 2), true, false);  // warm-up

  fmt::print(
      "TorchScript ResNet-18, 224 x 224, batch of {}: seconds per batch, wall (CPU of the process), best of 2 runs of "
      "{} batches\n",
      images.view.rows(), kBatches);
  fmt::print("first open_model of a TorchScript model (loads libtorch): {:.2f} s\n\n", first_open);
  fmt::print(
      "| threads | caulk runtime | PyTorch, torch.jit.load (.pt) | PyTorch eager (nn.Module) | caulk vs .pt, wall (CPU) | caulk vs "
      "eager, wall (CPU) |\n");
  fmt::print("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  nlohmann::json python_one;
  for (int threads : {1, 2}) {
    // caulk: `threads` batches at a time, one per thread, each on one intra-op thread.
    const Timing caulk = best_of(2, [&] {
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t)
        workers.emplace_back([&] {
          for (int b = 0; b < kBatches; ++b) resnet->run(images.view, true, false);
        });
      for (auto& w : workers) w.join();
    });
    const double batches = kBatches * threads, wall = caulk.wall / batches, cpu = caulk.cpu / batches;
    const auto python =
        nlohmann::json::parse(run_command(fmt::format("{} {} time {} {}", kPython, kScript.string(), dir.string(), threads)));
    if (threads == 1) python_one = python;
    const double jit = python["resnet_jit"][0], jit_cpu = python["resnet_jit"][1];
    const double eager = python["resnet_eager"][0], eager_cpu = python["resnet_eager"][1];
    fmt::print("| {} | {:.3f} ({:.3f}) | {:.3f} ({:.3f}) | {:.3f} ({:.3f}) | {:.2f} x ({:.2f} x) | {:.2f} x ({:.2f} x) |\n", threads, wall,
               cpu, jit, jit_cpu, eager, eager_cpu, jit / wall, jit_cpu / cpu, eager / wall, eager_cpu / cpu);
  }
  return python_one;
}

void bench_fisher(const fs::path& dir, const nlohmann::json& python) {
  auto cnn = open(dir / "digits_cnn.pt", "embed");
  const Batch digits(dir / "digits.npy");
  cnn->fisher_diagonal(digits.view.slice(0, 4), false, 0);  // warm-up
  const Timing fisher = best_of(3, [&] { cnn->fisher_diagonal(digits.view, false, 0); });
  const Timing generic = best_of(3, [&] { cnn->caulk::models::Model::fisher_diagonal(digits.view, false, 0); });
  std::int64_t parameters = 0;
  for (const auto& p : cnn->parameters()) parameters += p.size();
  fmt::print("\nExact diagonal Fisher, digits CNN ({} parameters), {} samples x 10 classes, one thread (best of 3):\n\n", parameters,
             digits.view.rows());
  fmt::print("| implementation | seconds, wall (CPU) | caulk's speed-up, wall (CPU) |\n| --- | ---: | ---: |\n");
  fmt::print("| caulk (TorchScript family) | {:.3f} ({:.3f}) | 1.00 x |\n", fisher.wall, fisher.cpu);
  fmt::print("| caulk, the interface's generic loop (forward/backward per class) | {:.3f} ({:.3f}) | {:.2f} x ({:.2f} x) |\n", generic.wall,
             generic.cpu, generic.wall / fisher.wall, generic.cpu / fisher.cpu);
  for (const char* key : {"fisher_eager", "fisher_jit", "fisher_eager_batched_grads"})
    if (python.contains(key)) {
      const double wall = python[key][0], cpu = python[key][1];
      fmt::print("| PyTorch, {} | {:.3f} ({:.3f}) | {:.2f} x ({:.2f} x) |\n", key, wall, cpu, wall / fisher.wall, cpu / fisher.cpu);
    }
  if (python.contains("fisher_eager_batched_grads_error"))
    fmt::print("(is_grads_batched failed: {})\n", python["fisher_eager_batched_grads_error"].get<std::string>());
  fmt::print("\nPyTorch {} in /usr/bin/python3\n", python["torch"].get<std::string>());
}

// ------------------------------------------------------------------------ the whole process

struct ProcessTiming {
  double wall = 0, cpu = 0;  // the child's user + system time, every thread (wait4's rusage)
  double load = 0;           // the 1-minute load average when it ended
};

// fork/exec of argv with stdout and stderr in `log`, timed from outside: what a user waits for.
// `env` is one NAME=VALUE added to the child's environment (empty: none).
ProcessTiming run_process(const std::vector<std::string>& argv, const fs::path& log, const std::string& env = "") {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    if (!env.empty()) putenv(const_cast<char*>(env.c_str()));
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage u{};
  if (wait4(pid, &status, 0, &u) < 0) throw std::runtime_error("wait4 failed");
  ProcessTiming t;
  t.wall = seconds_since(start);
  t.cpu = double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  double load[1] = {0};
  if (getloadavg(load, 1) == 1) t.load = load[0];
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format("{} failed (status {}): see {}", argv[0], status, log.string()));
  return t;
}

void read_through(const fs::path& file) {  // into the page cache, so neither side pays the disk
  std::ifstream in(file, std::ios::binary);
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
  }
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

void bench_process(const fs::path& dir, int n) {
  const fs::path images = dir / fmt::format("images_{}.npy", n), labels = dir / fmt::format("labels_{}.npy", n);
  if (!fs::exists(images)) run_command(fmt::format("{} {} images {} {}", kPython, kScript.string(), dir.string(), n));
  std::ofstream(dir / "hub.toml") << fmt::format(
      "[hub]\nname = \"bench\"\n[[model]]\nname = \"resnet18\"\ntorchscript = \"{}\"\n"
      "feature_method = \"embed\"\n",
      (dir / "resnet18_224.pt").string());
  std::ofstream(dir / "process.toml") << fmt::format(R"([pipeline]
name = "bench-process"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ test = "{}" }}, inputs = {{ test = "{}" }} }}
[[node]]
id = "embed"
type = "adapter.models"
inputs = {{ data = "task" }}
params = {{ manifest = "{}", batch_size = 64, source_probs = false }}
)",
                                                     labels.string(), images.string(), (dir / "hub.toml").string());
  for (const auto& f : {images, labels, dir / "resnet18_224.pt"}) read_through(f);
  const fs::path caulk = fs::path(CAULK_BINARY_DIR) / "bin" / "caulk";

  fmt::print(
      "Whole process: `caulk run` (dataset.load + adapter.models with source_probs = false, batch 64, --jobs = threads) against a Python "
      "process "
      "running PyTorch eager (nn.Module, same weights, torch.set_num_threads), {} images 224 x 224, loading included\n",
      n);
  fmt::print("CPU: {}, {} logical cores\n\n", cpu_model(), std::thread::hardware_concurrency());
  fmt::print(
      "| threads | caulk run, s wall (CPU) | caulk run without its CPU block cache (CAULK_TORCH_CPU_CACHE=0), s wall (CPU) | PyTorch eager "
      "process, s wall (CPU) | caulk's throughput vs PyTorch, wall (CPU) | without the cache, wall (CPU) | images/s caulk, PyTorch (wall) "
      "| "
      "load average at the end (caulk, without cache, PyTorch) | max relative difference of the features |\n");
  fmt::print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (int threads : {1, 2}) {
    const fs::path out = dir / fmt::format("run_{}", threads), uncached = dir / fmt::format("run_{}_uncached", threads),
                   python_out = dir / fmt::format("python_{}.npy", threads);
    fs::remove_all(out);
    fs::remove_all(uncached);
    auto caulk_run = [&](const fs::path& folder, const std::string& env) {
      return run_process(
          {caulk.string(), "run", (dir / "process.toml").string(), "--out", folder.string(), "--jobs", std::to_string(threads)},
          folder.string() + ".log", env);
    };
    const ProcessTiming c = caulk_run(out, "");
    const ProcessTiming u = caulk_run(uncached, "CAULK_TORCH_CPU_CACHE=0");
    const ProcessTiming p =
        run_process({kPython, kScript.string(), "process", dir.string(), std::to_string(n), std::to_string(threads), python_out.string()},
                    dir / fmt::format("python_{}.log", threads));
    // All three computed the same features (a benchmark that measures the work it claims).
    const auto b = caulk::io::NpyArray::open(python_out).matrix().to_double();
    double difference = 0;
    for (const fs::path& folder : {out, uncached}) {
      const auto a = caulk::io::NpyArray::open(folder / "embed" / "resnet18.test.features.npy").matrix().to_double();
      difference = std::max(difference,
                            a.rows() == b.rows() && a.cols() == b.cols() ? (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff() : 1e300);
    }
    fmt::print(
        "| {} | {:.1f} ({:.1f}) | {:.1f} ({:.1f}) | {:.1f} ({:.1f}) | {:.2f} x ({:.2f} x) | {:.2f} x ({:.2f} x) | {:.1f}, {:.1f} | {:.1f}, "
        "{:.1f}, {:.1f} | {:.1e} |\n",
        threads, c.wall, c.cpu, u.wall, u.cpu, p.wall, p.cpu, p.wall / c.wall, p.cpu / c.cpu, p.wall / u.wall, p.cpu / u.cpu, n / c.wall,
        n / p.wall, c.load, u.load, p.load, difference);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / "caulk-bench-torch";
  const bool fisher_only = argc > 2 && std::string(argv[2]) == "--fisher";
  if (!fs::exists(dir / "digits.npy")) run_command(fmt::format("{} {} make {}", kPython, kScript.string(), dir.string()));
  if (argc > 2 && std::string(argv[2]) == "--process") {
    bench_process(dir, argc > 3 ? std::stoi(argv[3]) : 256);
    return 0;
  }
  const nlohmann::json python =
      fisher_only ? nlohmann::json::parse(run_command(fmt::format("{} {} time {} 1 --fisher", kPython, kScript.string(), dir.string())))
                  : bench_resnet(dir);
  bench_fisher(dir, python);
  return 0;
}
